//! Image folders on disk, generated here: layouts, formats, conversion, bad files and
//! the cache.

use std::fs;
use std::path::Path;

use fitnets_images::{Conversion, Options, Resize, Source, cache, load};
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

/// A gray image whose pixel (x, y) is `seed + 3x + 5y` (mod 256).
fn gray(width: u32, height: u32, seed: u8) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| image::Luma([seed.wrapping_add((3 * x + 5 * y) as u8)]))
}

fn rgb(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| image::Rgb([seed, (x * 9) as u8, (y * 7) as u8]))
}

fn save(image: DynamicImage, path: &Path, format: ImageFormat) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save_with_format(path, format).unwrap();
}

fn options(height: u32, width: u32, channels: u8) -> Options {
    Options {
        conversion: Conversion { height, width, channels, resize: Resize::Stretch },
        skip_bad: false,
        cache: true,
    }
}

/// `train/` and `test/` with two classes of 8x8 gray PNGs: `n` training and 2 test
/// images per class, named by a running number.
fn split_set(dir: &Path, n: u32) {
    let mut number = 0;
    for (part, count) in [("train", n), ("test", 2)] {
        for class in ["a", "b"] {
            for _ in 0..count {
                let path = dir.join(part).join(class).join(format!("{number:05}.png"));
                save(gray(8, 8, number as u8).into(), &path, ImageFormat::Png);
                number += 1;
            }
        }
    }
}

#[test]
fn mixed_formats_sizes_and_colours_convert_to_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        ("png", ImageFormat::Png),
        ("jpg", ImageFormat::Jpeg),
        ("bmp", ImageFormat::Bmp),
        ("gif", ImageFormat::Gif),
        ("pgm", ImageFormat::Pnm),
        ("tif", ImageFormat::Tiff),
    ];
    for class in ["cat", "dog", "eel"] {
        for i in 0..40u32 {
            let (ext, format) = formats[i as usize % formats.len()];
            let image: DynamicImage = match (ext, i % 2) {
                ("pgm", _) | (_, 0) => gray(10 + i % 7, 12 + i % 5, i as u8).into(),
                _ => rgb(30 + i, 20, i as u8).into(),
            };
            save(image, &dir.path().join(class).join(format!("{i}.{ext}")), format);
        }
    }
    for channels in [1, 3] {
        let loaded = load(dir.path(), &options(8, 6, channels)).unwrap();
        assert_eq!(loaded.classes, ["cat", "dog", "eel"]);
        assert!(!loaded.split);
        assert_eq!(loaded.train.labels.len() + loaded.test.labels.len(), 120);
        assert!(!loaded.test.labels.is_empty() && loaded.test.labels.len() < 30, "{}", loaded.test.labels.len());
        assert_eq!(loaded.train.pixels.len(), loaded.train.labels.len() * 8 * 6 * usize::from(channels));
        assert_eq!(loaded.test.pixels.len(), loaded.test.labels.len() * 8 * 6 * usize::from(channels));
        for label in 0..3 {
            assert!(loaded.train.labels.contains(&label));
        }
    }
}

#[test]
fn the_split_layout_keeps_numbered_order_and_exact_pixels() {
    let dir = tempfile::tempdir().unwrap();
    split_set(dir.path(), 3);
    let loaded = load(dir.path(), &options(8, 8, 1)).unwrap();
    assert!(loaded.split);
    // Files are numbered a, a, a, b, b, b (train) then a, a, b, b (test): by name.
    assert_eq!(loaded.train.labels, [0, 0, 0, 1, 1, 1]);
    assert_eq!(loaded.test.labels, [0, 0, 1, 1]);
    for (i, image) in loaded.train.pixels.chunks(64).enumerate() {
        assert_eq!(image, gray(8, 8, i as u8).as_raw().as_slice(), "image {i}");
    }
}

#[test]
fn resize_modes_stretch_fill_and_fit() {
    let dir = tempfile::tempdir().unwrap();
    // A white 8x4 image: fit pads it to 8x8 with black rows, fill and stretch do not.
    let white = GrayImage::from_pixel(8, 4, image::Luma([255]));
    let path = dir.path().join("white.png");
    white.save(&path).unwrap();
    let convert = |resize| {
        let conversion = Conversion { height: 8, width: 8, channels: 1, resize };
        fitnets_images::convert_file(&path, &conversion).unwrap()
    };
    assert!(convert(Resize::Stretch).iter().all(|&p| p == 255));
    assert!(convert(Resize::Fill).iter().all(|&p| p == 255));
    let fit = convert(Resize::Fit);
    assert!(fit[..16].iter().all(|&p| p == 0), "{fit:?}");
    assert!(fit[16..48].iter().all(|&p| p == 255), "{fit:?}");
    assert!(fit[48..].iter().all(|&p| p == 0), "{fit:?}");
    assert_eq!("fill".parse::<Resize>(), Ok(Resize::Fill));
    assert!("squash".parse::<Resize>().unwrap_err().contains("stretch"));
}

#[test]
fn the_cache_is_used_checked_and_invalidated() {
    let dir = tempfile::tempdir().unwrap();
    split_set(dir.path(), 3);
    let first = load(dir.path(), &options(8, 8, 1)).unwrap();
    let Source::Decoded { cached: Ok(cache_file) } = &first.source else { panic!("{:?}", first.source) };
    let second = load(dir.path(), &options(8, 8, 1)).unwrap();
    assert_eq!(second.source, Source::Cache(cache_file.clone()));
    assert_eq!((&second.train, &second.test, &second.files_hash), (&first.train, &first.test, &first.files_hash));

    // Another conversion is another cache file.
    let other = load(dir.path(), &options(4, 4, 1)).unwrap();
    assert!(matches!(other.source, Source::Decoded { cached: Ok(ref p) } if p != cache_file));

    // A damaged cache file is not trusted: decoded again and rewritten.
    let mut bytes = fs::read(cache_file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(cache_file, &bytes).unwrap();
    let third = load(dir.path(), &options(8, 8, 1)).unwrap();
    assert!(matches!(third.source, Source::Decoded { cached: Ok(_) }), "{:?}", third.source);
    assert_eq!(third.train, first.train);
    fs::write(cache_file, &bytes[..100]).unwrap();
    assert!(matches!(load(dir.path(), &options(8, 8, 1)).unwrap().source, Source::Decoded { .. }));

    // A changed image changes the hash and the pixels.
    save(gray(8, 8, 200).into(), &dir.path().join("train/a/00000.png"), ImageFormat::Png);
    let changed = load(dir.path(), &options(8, 8, 1)).unwrap();
    assert_ne!(changed.files_hash, first.files_hash);
    assert!(matches!(changed.source, Source::Decoded { .. }));
    assert_eq!(&changed.train.pixels[..64], gray(8, 8, 200).as_raw().as_slice());
    assert!(cache_file.starts_with(dir.path().join(cache::CACHE_DIR)));
}

#[test]
fn a_read_only_folder_loads_without_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    split_set(dir.path(), 2);
    let loaded = load(dir.path(), &Options { cache: false, ..options(8, 8, 1) }).unwrap();
    assert!(matches!(loaded.source, Source::Decoded { cached: Err(_) }));
    assert!(!dir.path().join(cache::CACHE_DIR).exists());
}

fn error(dir: &Path, options: &Options) -> String {
    format!("{:#}", load(dir, options).unwrap_err())
}

#[test]
fn bad_files_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    split_set(dir.path(), 3);
    let corrupt = dir.path().join("train/a/00001.png");
    let bytes = fs::read(&corrupt).unwrap();
    fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(dir.path().join("train/b/notes.txt"), "not an image").unwrap();
    let message = error(dir.path(), &options(8, 8, 1));
    assert!(message.contains("00001.png") && message.contains("--skip-bad"), "{message}");
    assert!(message.contains("1 more bad file"), "{message}");

    let loaded = load(dir.path(), &Options { skip_bad: true, ..options(8, 8, 1) }).unwrap();
    let skipped: Vec<&str> = loaded.skipped.iter().map(|s| s.rel.as_str()).collect();
    assert_eq!(skipped, ["train/a/00001.png", "train/b/notes.txt"]);
    assert_eq!(loaded.train.labels, [0, 0, 1, 1, 1]);
    assert!(loaded.skipped[1].reason.contains("not an image file name"), "{:?}", loaded.skipped);
}

#[test]
fn layouts_that_cannot_be_a_data_set() {
    let empty = tempfile::tempdir().unwrap();
    assert!(error(empty.path(), &options(8, 8, 1)).contains("no class folders"));

    let single = tempfile::tempdir().unwrap();
    save(gray(8, 8, 0).into(), &single.path().join("only/1.png"), ImageFormat::Png);
    assert!(error(single.path(), &options(8, 8, 1)).contains("only one class"));

    let empty_class = tempfile::tempdir().unwrap();
    split_set(empty_class.path(), 2);
    fs::create_dir_all(empty_class.path().join("train/c")).unwrap();
    fs::write(empty_class.path().join("train/c/readme.md"), "x").unwrap();
    let message = error(empty_class.path(), &options(8, 8, 1));
    assert!(message.contains("train/c") && message.contains("no image files"), "{message}");

    let extra = tempfile::tempdir().unwrap();
    split_set(extra.path(), 2);
    save(gray(8, 8, 0).into(), &extra.path().join("val/a/1.png"), ImageFormat::Png);
    assert!(error(extra.path(), &options(8, 8, 1)).contains("val/"));

    let unknown = tempfile::tempdir().unwrap();
    split_set(unknown.path(), 2);
    save(gray(8, 8, 0).into(), &unknown.path().join("test/zebra/1.png"), ImageFormat::Png);
    assert!(error(unknown.path(), &options(8, 8, 1)).contains("test/zebra/"));

    let tiny = tempfile::tempdir().unwrap();
    save(gray(8, 8, 0).into(), &tiny.path().join("a/1.png"), ImageFormat::Png);
    save(gray(8, 8, 0).into(), &tiny.path().join("b/1.png"), ImageFormat::Png);
    let message = error(tiny.path(), &options(8, 8, 1));
    assert!(message.contains("too few") || message.contains("fell into the test set"), "{message}");
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    split_set(dir.path(), 2);
    std::os::unix::fs::symlink(dir.path().join("train/a"), dir.path().join("train/a/again")).unwrap();
    let message = error(dir.path(), &options(8, 8, 1));
    assert!(message.contains("symbolic link loop") && message.contains("again"), "{message}");
}

#[test]
fn huge_images_are_refused_from_their_header() {
    // A PNG header that claims 100,000 x 100,000 pixels, with no data behind it.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let ihdr = [&100_000u32.to_be_bytes()[..], &100_000u32.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    png.extend_from_slice(&ihdr);
    let crc = crc32(&[b"IHDR".as_slice(), &ihdr].concat());
    png.extend_from_slice(&crc.to_be_bytes());
    // The start of the pixel data, which the header's reader looks for.
    let idat = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    png.extend_from_slice(&(idat.len() as u32).to_be_bytes());
    png.extend_from_slice(b"IDAT");
    png.extend_from_slice(&idat);
    png.extend_from_slice(&crc32(&[b"IDAT".as_slice(), &idat].concat()).to_be_bytes());
    let conversion = Conversion { height: 8, width: 8, channels: 1, resize: Resize::Stretch };
    let why = fitnets_images::convert(&png, &conversion).unwrap_err();
    assert!(why.contains("megapixels") && why.contains("limit"), "{why}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
