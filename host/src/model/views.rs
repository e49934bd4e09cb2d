//! Test-time augmentation: a network classifies an image by the mean of its logits over
//! several views of the image ([`Net::predict`](super::Net::predict)).
//!
//! A view is the image moved by at most one pixel, or the mirror image of one. The views
//! only make sense for a network that saw such images in training (`--hflip`,
//! `--shift`); the commands check that.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// Which views of an image a network averages its logits over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Views {
    /// Each view and its mirror image (left to right).
    pub mirror: bool,
    /// The image and its four one-pixel shifts: up, down, left and right.
    pub shift: bool,
}

impl Views {
    /// One view: the image itself.
    pub const PLAIN: Views = Views { mirror: false, shift: false };

    /// Forward passes per image.
    pub fn count(self) -> usize {
        (if self.shift { 5 } else { 1 }) * if self.mirror { 2 } else { 1 }
    }

    /// Whether the network classifies each image once, as it is.
    pub fn is_plain(self) -> bool {
        self == Views::PLAIN
    }

    /// How tables and logs name the averaging: `None` for a plain network.
    pub fn label(self) -> Option<&'static str> {
        match (self.mirror, self.shift) {
            (false, false) => None,
            (true, false) => Some("flip-averaged"),
            (false, true) => Some("shift-averaged"),
            (true, true) => Some("flip- and shift-averaged"),
        }
    }

    /// How error messages name the averaging: `plain` for a plain network.
    pub fn name(self) -> &'static str {
        self.label().unwrap_or("plain")
    }

    /// How `fitnets eval` says each image is classified: `None` for a plain network.
    pub fn description(self) -> Option<&'static str> {
        match (self.mirror, self.shift) {
            (false, false) => None,
            (true, false) => Some("each averaged with its mirror image"),
            (false, true) => Some("each averaged with its four one-pixel shifts"),
            (true, true) => Some("each averaged with its mirror image, its four one-pixel shifts and theirs"),
        }
    }
}

/// `x` (`[N, C, H, W]`) moved down by `dy` and right by `dx` pixels (negative: up, left;
/// at most one pixel each way). The pixels moved in from outside the image take
/// `background[c]` in channel `c`: the normalized value of a zero pixel, as the training
/// shifts fill them.
///
/// Panics if an offset is larger than one pixel or `background` does not have one value
/// per channel: bugs in the caller.
pub fn translate<B: Backend>(x: Tensor<B, 4>, dy: isize, dx: isize, background: &[f32]) -> Tensor<B, 4> {
    assert!(dy.abs() <= 1 && dx.abs() <= 1, "views move an image by at most one pixel, not ({dy}, {dx})");
    let [n, c, h, w] = x.dims();
    assert_eq!(background.len(), c, "one background value per channel");
    if (dy, dx) == (0, 0) {
        return x;
    }
    let fill = Tensor::<B, 1>::from_floats(background, &x.device()).reshape([1, c, 1, 1]);
    let x = shift_along(x, 2, dy, fill.clone().expand([n, c, 1, w]));
    shift_along(x, 3, dx, fill.expand([n, c, h, 1]))
}

/// `x` moved by `by` (-1, 0 or 1) along `dim`, the slot left free filled with `edge` (the
/// shape of one slice of `x` along `dim`). The pixels are copied, not recomputed: a
/// moved pixel is bit for bit the pixel it was.
fn shift_along<B: Backend>(x: Tensor<B, 4>, dim: usize, by: isize, edge: Tensor<B, 4>) -> Tensor<B, 4> {
    let len = x.dims()[dim];
    match by {
        0 => x,
        1 => Tensor::cat(vec![edge, x.narrow(dim, 0, len - 1)], dim),
        _ => Tensor::cat(vec![x.narrow(dim, 1, len - 1), edge], dim),
    }
}
