//! Random training-time augmentation of NHWC `u8` images: translation, horizontal flip
//! and random erasing.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which augmentations to apply to each training image; the default does nothing, and
/// fields missing from a saved config take their default.
///
/// Both translations move the image by a whole number of pixels and fill what moved in
/// with zeros; when both are set their offsets add up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Largest random translation in pixels along each axis, drawn uniformly from
    /// `-shift..=shift`.
    pub shift: u8,
    /// Mirror left to right with probability one half.
    pub hflip: bool,
    /// Pad each side with this many zero pixels, then crop a random window of the original
    /// size (the CIFAR recipe): a translation drawn uniformly from `-crop_pad..=crop_pad`.
    pub crop_pad: u8,
    /// Random erasing (Zhong et al., 2017), with probability one half: a rectangle of 2 to
    /// 40 % of the image's area, its aspect ratio between 0.3 and 1/0.3, filled with
    /// uniformly random pixel values.
    pub erase: bool,
}

impl Augment {
    /// Refuses shifts and crop paddings as large as the images they move.
    pub fn check(&self, height: usize, width: usize) -> anyhow::Result<()> {
        let side = height.min(width);
        anyhow::ensure!(
            usize::from(self.shift) < side,
            "--shift {}: the images are {height}x{width}, so a shift must be below {side}",
            self.shift
        );
        anyhow::ensure!(
            usize::from(self.crop_pad) < side,
            "--crop-pad {}: the images are {height}x{width}, so a crop padding must be below {side}",
            self.crop_pad
        );
        Ok(())
    }

    /// Whether [`Augment::apply`] copies every image unchanged.
    pub fn is_identity(&self) -> bool {
        self.shift == 0 && !self.hflip && self.crop_pad == 0 && !self.erase
    }

    /// The largest translation [`Augment::apply`] can draw along each axis: the shift's
    /// and the crop's add up.
    pub fn reach(&self) -> i32 {
        i32::from(self.shift) + i32::from(self.crop_pad)
    }

    /// Writes an augmented copy of `image` (`h * w * c` bytes, NHWC) into `out`, and
    /// returns where it was moved and whether it was mirrored (erasing, drawn last, is
    /// not part of the placement).
    ///
    /// Draws from `rng` in a fixed order (shift, then crop, then flip, then erasing; rows
    /// before columns), and only for the augmentations that are enabled, so a seeded
    /// generator gives the same images on every platform. Panics if `image` or `out` is not
    /// `h * w * c` bytes long.
    pub fn apply(&self, image: &[u8], h: usize, w: usize, c: usize, rng: &mut ChaCha8Rng, out: &mut [u8]) -> Placement {
        let mut placement = Placement::IDENTITY;
        for max in [self.shift, self.crop_pad] {
            if max > 0 {
                let max = i32::from(max);
                placement.dy += rng.random_range(-max..=max);
                placement.dx += rng.random_range(-max..=max);
            }
        }
        placement.mirrored = self.hflip && rng.random_bool(0.5);
        placement.apply(image, h, w, c, out);
        if self.erase && rng.random_bool(0.5) {
            erase_random(out, h, w, c, rng);
        }
        placement
    }
}

/// Where an augmented image was moved (down by `dy`, right by `dx` pixels; negative: up,
/// left) and whether it was then mirrored left to right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Placement {
    pub dy: i32,
    pub dx: i32,
    pub mirrored: bool,
}

impl Placement {
    /// The image as it is.
    pub const IDENTITY: Placement = Placement { dy: 0, dx: 0, mirrored: false };

    /// Writes `image` (`h * w * c` bytes, NHWC) placed so into `out`: translated (zeros
    /// moved in), then mirrored. Panics if `image` or `out` is not `h * w * c` bytes long.
    pub fn apply(&self, image: &[u8], h: usize, w: usize, c: usize, out: &mut [u8]) {
        translate(image, h, w, c, self.dy as isize, self.dx as isize, out);
        if self.mirrored {
            hflip(out, h, w, c);
        }
    }
}

/// Fills a random rectangle of `image` (`h * w * c` bytes, NHWC) with random bytes: the
/// rectangle covers 2 to 40 % of the area, with height/width between 0.3 and 1/0.3. Draws
/// up to 100 candidate rectangles and leaves the image as it is if none fits (images
/// narrower than 3 pixels, in practice).
pub fn erase_random(image: &mut [u8], h: usize, w: usize, c: usize, rng: &mut ChaCha8Rng) {
    const AREA: (f64, f64) = (0.02, 0.4);
    const LOG_RATIO: f64 = 1.203_972_804_325_936; // ln(1 / 0.3)
    assert_eq!(image.len(), h * w * c, "image is not {h}x{w}x{c}");
    if image.is_empty() {
        return;
    }
    for _ in 0..100 {
        let area = rng.random_range(AREA.0..AREA.1) * (h * w) as f64;
        let ratio = rng.random_range(-LOG_RATIO..LOG_RATIO).exp();
        let (eh, ew) = ((area * ratio).sqrt().round() as usize, (area / ratio).sqrt().round() as usize);
        if eh == 0 || ew == 0 || eh >= h || ew >= w {
            continue;
        }
        let (y0, x0) = (rng.random_range(0..=h - eh), rng.random_range(0..=w - ew));
        for row in image.chunks_exact_mut(w * c).skip(y0).take(eh) {
            rng.fill(&mut row[x0 * c..(x0 + ew) * c]);
        }
        return;
    }
}

/// Writes `image` moved down by `dy` and right by `dx` pixels (negative: up, left) into
/// `out`; pixels moved in from outside are zero. Panics if `image` or `out` is not
/// `h * w * c` bytes long.
pub fn translate(image: &[u8], h: usize, w: usize, c: usize, dy: isize, dx: isize, out: &mut [u8]) {
    assert_eq!(image.len(), h * w * c, "image is not {h}x{w}x{c}");
    assert_eq!(out.len(), h * w * c, "output is not {h}x{w}x{c}");
    let row = w * c;
    if row == 0 {
        return;
    }
    // Output columns that receive a source pixel, and the source column of the first.
    let (x0, x1) = (dx.clamp(0, w as isize) as usize, (w as isize + dx).clamp(0, w as isize) as usize);
    let sx0 = (x0 as isize - dx) as usize;
    for (y, dst) in out.chunks_exact_mut(row).enumerate() {
        let sy = y as isize - dy;
        if sy < 0 || sy >= h as isize || x0 >= x1 {
            dst.fill(0);
            continue;
        }
        let src = &image[sy as usize * row..][..row];
        dst[..x0 * c].fill(0);
        dst[x0 * c..x1 * c].copy_from_slice(&src[sx0 * c..(sx0 + x1 - x0) * c]);
        dst[x1 * c..].fill(0);
    }
}

/// Mirrors `image` (`h * w * c` bytes, NHWC) left to right in place, keeping the channel
/// order of each pixel. Panics if `image` is not `h * w * c` bytes long.
pub fn hflip(image: &mut [u8], h: usize, w: usize, c: usize) {
    assert_eq!(image.len(), h * w * c, "image is not {h}x{w}x{c}");
    if w * c == 0 {
        return;
    }
    for row in image.chunks_exact_mut(w * c) {
        for x in 0..w / 2 {
            let (left, right) = row.split_at_mut((w - 1 - x) * c);
            left[x * c..(x + 1) * c].swap_with_slice(&mut right[..c]);
        }
    }
}
