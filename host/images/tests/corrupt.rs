//! Damaged image files of every format read: each is an error or an image, never a
//! panic (not even one the loader catches) and never a hang.

use std::sync::atomic::{AtomicUsize, Ordering};

use fitnets_images::{Conversion, Resize, convert};
use fitnets_tests::SplitMix;
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    match format {
        ImageFormat::Gif => DynamicImage::from(image.to_rgba8()).write_to(&mut bytes, format).unwrap(),
        _ => image.write_to(&mut bytes, format).unwrap(),
    }
    bytes.into_inner()
}

#[test]
fn damaged_files_never_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let gray: DynamicImage = GrayImage::from_fn(23, 17, |x, y| image::Luma([(x * 11 + y * 7) as u8])).into();
    let rgb: DynamicImage = RgbImage::from_fn(19, 21, |x, y| image::Rgb([x as u8 * 13, y as u8 * 5, 77])).into();
    let formats =
        [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp, ImageFormat::Gif, ImageFormat::Pnm, ImageFormat::Tiff];
    let conversion = Conversion { height: 8, width: 8, channels: 3, resize: Resize::Fit };
    let mut rng = SplitMix(7);
    let (mut cases, mut refused) = (0, 0);
    let mut check = |bytes: &[u8]| {
        cases += 1;
        if convert(bytes, &conversion).is_err() {
            refused += 1;
        }
    };
    for format in formats {
        for image in [&gray, &rgb] {
            let good = encoded(image, format);
            if let Err(why) = convert(&good, &conversion) {
                panic!("{format:?}: {why}");
            }
            // Every truncation of the first 64 bytes, then 40 more points.
            for cut in (0..good.len().min(64)).chain((0..40).map(|_| rng.below(good.len()))) {
                check(&good[..cut]);
            }
            // Flipped bits, overwritten runs and huge header numbers.
            for _ in 0..150 {
                let mut bad = good.clone();
                for _ in 0..=rng.below(4) {
                    let span = if rng.below(2) == 0 { bad.len().min(48) } else { bad.len() };
                    let at = rng.below(span);
                    match rng.below(3) {
                        0 => bad[at] ^= 1 << rng.below(8),
                        1 => bad[at] = 0xff,
                        _ => bad[at] = 0,
                    }
                }
                check(&bad);
            }
            // Garbage after a valid header.
            let mut tail = good[..good.len().min(32)].to_vec();
            tail.extend((0..500).map(|_| rng.next_u64() as u8));
            check(&tail);
        }
    }
    std::panic::set_hook(previous);
    println!("{cases} damaged files, {refused} refused, {} panics", PANICS.load(Ordering::SeqCst));
    assert!(cases > 2000);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a decoder panicked on a damaged file");
}
