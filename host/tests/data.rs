//! `fitnets::data` on small generated IDX and CIFAR files, plus the real Fashion-MNIST when installed.

use std::path::{Path, PathBuf};

use fitnets::data::augment;
use fitnets::data::idx::{Idx, load_idx, read_idx};
use fitnets::data::{self, Augment, Dataset, FASHION_MNIST_DIR, FASHION_MNIST_LABELS, Normalization, cifar};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// A fresh temporary directory (removed when dropped) with a file writer.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new() -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// An IDX file of `u8` elements; `data` need not match `dims`, to make bad files.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}

fn ramp(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn idx_round_trips_3d_and_4d() {
    let dir = TempDir::new();
    let pixels = ramp(2 * 3 * 4);
    let set = load_idx(
        &dir.write("i3", &idx_bytes(&[2, 3, 4], &pixels)),
        &dir.write("l3", &idx_bytes(&[2], &[1, 4])),
        "three",
    )
    .unwrap();
    assert_eq!((set.len(), set.height, set.width, set.channels, set.classes), (2, 3, 4, 1, 5));
    assert_eq!((set.image(1), set.label(1), set.name.as_str()), (&pixels[12..], 4, "three"));

    let pixels = ramp(2 * 2 * 5 * 3);
    let set = load_idx(
        &dir.write("i4", &idx_bytes(&[2, 2, 5, 3], &pixels)),
        &dir.write("l4", &idx_bytes(&[2], &[0, 0])),
        "four",
    )
    .unwrap();
    assert_eq!((set.len(), set.height, set.width, set.channels, set.classes), (2, 2, 5, 3, 1));
    assert_eq!(set.images, pixels);
    assert_eq!(set.image_len(), 30);
}

#[test]
fn gzip_and_raw_give_identical_data_sets_whatever_the_file_name() {
    let dir = TempDir::new();
    let (images, labels) = (idx_bytes(&[3, 2, 2], &ramp(12)), idx_bytes(&[3], &[2, 0, 1]));
    let raw = load_idx(&dir.write("images.gz", &images), &dir.write("labels", &labels), "x").unwrap();
    let gz = load_idx(&dir.write("images", &gzip(&images)), &dir.write("labels.idx", &gzip(&labels)), "x").unwrap();
    assert_eq!(raw, gz);
    assert_eq!(read_idx(&dir.write("i.gz", &gzip(&images))).unwrap(), Idx { dims: vec![3, 2, 2], data: ramp(12) });
}

/// `bytes`, raw and gzip-compressed, are rejected with an error naming the file and
/// containing `expected`.
fn check(bytes: &[u8], expected: &str) {
    let dir = TempDir::new();
    for (name, content) in [("bad-raw", bytes.to_vec()), ("bad-gz", gzip(bytes))] {
        let message = read_idx(&dir.write(name, &content)).unwrap_err().to_string();
        assert!(message.contains(name) && message.contains(expected), "{message:?} lacks {name:?} or {expected:?}");
    }
}

#[test]
fn idx_faults_are_errors_naming_the_file_and_the_fault() {
    check(&[], "file is empty");
    check(&[0, 0, 8], "truncated: 3 bytes, shorter than the 4-byte magic");
    check(&[1, 0, 8, 1, 0, 0, 0, 1, 5], "bad magic: starts with 01 00");
    check(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "unsupported element type 0x0d (f32)");
    check(&[0, 0, 8, 0], "0 dimensions; 1 to 4 are supported");
    check(&[0, 0, 8, 5], "5 dimensions; 1 to 4 are supported");
    check(&[0, 0, 8, 3, 0, 0, 0, 1], "truncated: header declares 3 dimensions (12 bytes), file has 4");
    check(&idx_bytes(&[2, 0], &[]), "dimension 1 of [2, 0] is zero");
    check(&idx_bytes(&[3, 10], &[0; 29]), "truncated: header says 30 bytes of data, file has 29");
    check(&idx_bytes(&[3, 10], &[0; 32]), "trailing bytes: header says 30 bytes of data, file has 32");
    check(&idx_bytes(&[u32::MAX; 4], &[]), "too large");
}

#[test]
fn corrupt_gzip_and_missing_files_are_errors() {
    let dir = TempDir::new();
    let mut bytes = gzip(&idx_bytes(&[100], &ramp(100)));
    let middle = bytes.len() / 2;
    bytes[middle..].fill(0xff);
    let message = read_idx(&dir.write("corrupt.gz", &bytes)).unwrap_err().to_string();
    assert!(message.contains("corrupt.gz: after gunzip"), "{message}");
    let message = format!("{:#}", read_idx(&dir.path().join("absent")).unwrap_err());
    assert!(message.contains("reading") && message.contains("absent"), "{message}");
}

#[test]
fn load_idx_checks_shapes_and_counts() {
    let dir = TempDir::new();
    let images = dir.write("imgs", &idx_bytes(&[3, 2, 2], &ramp(12)));
    let labels = dir.write("tags", &idx_bytes(&[2], &[0, 1]));
    let message = load_idx(&images, &labels, "x").unwrap_err().to_string();
    assert!(message.contains("imgs has 3 images but") && message.contains("tags has 2 labels"), "{message}");
    let flat = dir.write("flat", &idx_bytes(&[12], &ramp(12)));
    let message = load_idx(&flat, &labels, "x").unwrap_err().to_string();
    assert!(message.contains("flat: images must have dims [n, h, w] or [n, h, w, c], found [12]"), "{message}");
    let square = dir.write("square", &idx_bytes(&[3, 1], &[0, 1, 2]));
    let message = load_idx(&images, &square, "x").unwrap_err().to_string();
    assert!(message.contains("square: labels must have dims [n], found [3, 1]"), "{message}");
}

#[test]
fn fashion_mnist_accepts_gzip_and_raw_names_and_names_a_missing_file() {
    let dir = TempDir::new();
    dir.write("train-images-idx3-ubyte.gz", &gzip(&idx_bytes(&[2, 2, 2], &ramp(8))));
    dir.write("train-labels-idx1-ubyte", &idx_bytes(&[2], &[9, 3]));
    dir.write("t10k-images-idx3-ubyte", &idx_bytes(&[1, 2, 2], &ramp(4)));
    let message = data::fashion_mnist(dir.path()).unwrap_err().to_string();
    assert!(message.contains("neither t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte found"), "{message}");
    dir.write("t10k-labels-idx1-ubyte.gz", &gzip(&idx_bytes(&[1], &[2])));
    let (train, test) = data::fashion_mnist(dir.path()).unwrap();
    assert_eq!((train.len(), test.len(), train.classes, test.classes), (2, 1, 10, 10));
    // Named after the folder, not after Fashion-MNIST (any IDX set loads here).
    let folder = dir.path().file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!((train.name.clone(), test.name.clone()), (format!("{folder}-train"), format!("{folder}-test")));
}

/// A CIFAR record whose pixel at plane `c`, row `y`, column `x` is `value(i, c, y, x)`.
fn cifar_record(i: usize, label: u8) -> Vec<u8> {
    let mut record = vec![label];
    for c in 0..3 {
        for y in 0..32 {
            record.extend((0..32).map(|x| cifar_value(i, c, y, x)));
        }
    }
    record
}

fn cifar_value(i: usize, c: usize, y: usize, x: usize) -> u8 {
    ((i * 31 + c * 97 + y * 7 + x * 3) % 251) as u8
}

/// A CIFAR folder with two records per batch; record `j` of batch `b` is image `2b + j`
/// with label `(2b + j) % 10`.
fn cifar_dir() -> TempDir {
    let dir = TempDir::new();
    let files = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
    for (b, file) in files.iter().chain(&["test_batch.bin"]).enumerate() {
        let bytes: Vec<u8> = (2 * b..2 * b + 2).flat_map(|i| cifar_record(i, (i % 10) as u8)).collect();
        dir.write(file, &bytes);
    }
    dir
}

#[test]
fn cifar_planes_become_nhwc() {
    let dir = cifar_dir();
    let (train, test) = cifar::load_cifar10(dir.path()).unwrap();
    assert_eq!((train.len(), test.len(), train.height, train.width, train.channels), (10, 2, 32, 32, 3));
    assert_eq!((train.classes, train.labels[7], test.labels[..].to_vec()), (10, 7, vec![0, 1]));
    // The pixel at (y, x, c) = (5, 9, 2) of training image 3 is byte 1 + 2 * 1024 + 5 * 32 + 9
    // of its record and lands at NHWC index (5 * 32 + 9) * 3 + 2.
    let record = cifar_record(3, 3);
    assert_eq!(train.image(3)[(5 * 32 + 9) * 3 + 2], record[1 + 2 * 1024 + 5 * 32 + 9]);
    for (i, set, offset) in [(3, &train, 0), (9, &train, 0), (1, &test, 10)] {
        for (k, &v) in set.image(i).iter().enumerate() {
            let (y, x, c) = (k / 96, k / 3 % 32, k % 3);
            assert_eq!(v, cifar_value(i + offset, c, y, x), "image {i} at ({y}, {x}, {c})");
        }
    }
}

#[test]
fn cifar_faults_name_the_file() {
    let dir = cifar_dir();
    dir.write("batches.meta.txt", b"a\nb\nc\n\n");
    let message = cifar::load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(message.contains("data_batch_2.bin: record 1 has label 3, but there are 3 classes"), "{message}");
    dir.write("batches.meta.txt", b"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
    assert_eq!(cifar::class_names(dir.path()).unwrap()[9], "j");
    dir.write("data_batch_4.bin", &[0; 3073 * 2 + 5]);
    let message = cifar::load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(message.contains("data_batch_4.bin: 6151 bytes is not a whole"), "{message}");
    std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    dir.write("data_batch_4.bin", &cifar_record(0, 0));
    let message = format!("{:#}", cifar::load_cifar10(dir.path()).unwrap_err());
    assert!(message.contains("reading") && message.contains("test_batch.bin"), "{message}");
}

/// 100 images of 2x2x1 whose pixels all equal their index.
fn numbered() -> Dataset {
    Dataset {
        images: (0..100u8).flat_map(|i| [i; 4]).collect(),
        labels: (0..100u8).map(|i| i % 10).collect(),
        height: 2,
        width: 2,
        channels: 1,
        classes: 10,
        name: "numbered".into(),
    }
}

fn ids(set: &Dataset) -> Vec<u8> {
    (0..set.len()).map(|i| set.image(i)[0]).collect()
}

#[test]
fn split_is_seeded_exact_and_disjoint() {
    let all = numbered();
    let (train, valid) = all.split(30, 7).unwrap();
    assert_eq!(
        (train.len(), valid.len(), train.name.as_str(), valid.name.as_str()),
        (70, 30, "numbered-train", "numbered-valid")
    );
    let mut union = [ids(&train), ids(&valid)].concat();
    union.sort_unstable();
    assert_eq!(union, (0..100).collect::<Vec<u8>>());
    for part in [&train, &valid] {
        assert!(
            (0..part.len()).all(|i| part.label(i) == part.image(i)[0] % 10 && part.image(i) == [part.image(i)[0]; 4])
        );
    }
    assert_eq!(all.split(30, 7).unwrap(), (train, valid.clone()));
    assert_ne!(ids(&all.split(30, 8).unwrap().1), ids(&valid));
    assert_eq!(all.split(0, 1).unwrap().0, Dataset { name: "numbered-train".into(), ..all.clone() });
    for too_many in [100, 101] {
        let message = all.split(too_many, 1).unwrap_err().to_string();
        assert!(message.contains(&format!("cannot hold out {too_many} images")), "{message}");
    }
}

#[test]
fn sample_is_seeded_and_clamped() {
    let all = numbered();
    let a = all.sample(10, 3);
    assert_eq!((a.len(), &a), (10, &all.sample(10, 3)));
    assert_ne!(ids(&a), ids(&all.sample(10, 4)));
    assert_eq!(ids(&a), ids(&all.sample(20, 3))[..10]);
    let mut every = ids(&all.sample(1000, 3));
    every.sort_unstable();
    assert_eq!(every, (0..100).collect::<Vec<u8>>());
    assert_eq!(ids(&all.subset(&[5, 2, 5])), [5, 2, 5]);
}

#[test]
fn normalization_of_a_tiny_set() {
    // Two 1x2 images of two channels: channel 0 is 0, 255, 0, 255 (mean 0.5, std 0.5),
    // channel 1 is 51, 51, 102, 102 (0.2, 0.2, 0.4, 0.4: mean 0.3, std 0.1).
    let set = Dataset {
        images: vec![0, 51, 255, 51, 0, 102, 255, 102],
        labels: vec![0, 1],
        height: 1,
        width: 2,
        channels: 2,
        classes: 2,
        name: "tiny".into(),
    };
    let norm = Normalization::of(&set);
    let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(&norm.mean, &[0.5, 0.3]) && close(&norm.std, &[0.5, 0.1]), "{norm:?}");
    let mut out = [0.0; 4];
    norm.apply(set.image(0), 2, &mut out);
    // CHW: channel 0 of both pixels, then channel 1.
    assert!(close(&out, &[-1.0, 1.0, -1.0, -1.0]), "{out:?}");
    let constant = Dataset { images: vec![7; 8], ..set };
    assert_eq!(Normalization::of(&constant).std, [1.0, 1.0]);
}

const H: usize = 3;
const W: usize = 5;
const C: usize = 2;

/// A 3x5x2 image with no zero pixel, so zero fill is visible.
fn picture() -> Vec<u8> {
    (1..=(H * W * C) as u8).collect()
}

fn at(image: &[u8], y: usize, x: usize, c: usize) -> u8 {
    image[(y * W + x) * C + c]
}

fn augmented(aug: Augment, seed: u64) -> Vec<u8> {
    let mut out = vec![0; H * W * C];
    aug.apply(&picture(), H, W, C, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
    out
}

fn translated(dy: isize, dx: isize) -> Vec<u8> {
    let mut out = vec![0xaa; H * W * C];
    augment::translate(&picture(), H, W, C, dy, dx, &mut out);
    out
}

#[test]
fn identity_augmentation_copies() {
    let aug = Augment::default();
    assert!(aug.is_identity() && !Augment { hflip: true, ..aug }.is_identity());
    assert!((0..8).all(|seed| augmented(aug, seed) == picture()));
}

#[test]
fn translation_moves_pixels_and_fills_zeros() {
    let image = picture();
    for dy in -4..=4isize {
        for dx in -6..=6isize {
            let out = translated(dy, dx);
            for (y, x, c) in (0..H).flat_map(|y| (0..W).flat_map(move |x| (0..C).map(move |c| (y, x, c)))) {
                let (sy, sx) = (y as isize - dy, x as isize - dx);
                let inside = (0..H as isize).contains(&sy) && (0..W as isize).contains(&sx);
                let expected = if inside { at(&image, sy as usize, sx as usize, c) } else { 0 };
                assert_eq!(at(&out, y, x, c), expected, "shift ({dy}, {dx}) at ({y}, {x}, {c})");
            }
        }
    }
    // Random shifts and crops are translations within their bound.
    for (aug, bound) in
        [(Augment { shift: 2, ..Augment::default() }, 2), (Augment { shift: 1, crop_pad: 2, ..Augment::default() }, 3)]
    {
        let offsets: Vec<(isize, isize)> =
            (-bound..=bound).flat_map(|dy| (-bound..=bound).map(move |dx| (dy, dx))).collect();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200 {
            let out = augmented(aug, seed);
            let found = offsets.iter().find(|&&(dy, dx)| translated(dy, dx) == out);
            seen.insert(*found.unwrap_or_else(|| panic!("{aug:?} seed {seed}: not a translation within {bound}")));
        }
        assert!(seen.len() > offsets.len() / 2, "{aug:?} reached only {seen:?}");
    }
}

#[test]
fn flip_mirrors_and_twice_is_identity() {
    let image = picture();
    let mut flipped = image.clone();
    augment::hflip(&mut flipped, H, W, C);
    assert!((0..H).all(|y| (0..W).all(|x| (0..C).all(|c| at(&flipped, y, x, c) == at(&image, y, W - 1 - x, c)))));
    let mut twice = flipped.clone();
    augment::hflip(&mut twice, H, W, C);
    assert_eq!(twice, image);
    let aug = Augment { hflip: true, ..Augment::default() };
    let outs: Vec<Vec<u8>> = (0..32).map(|seed| augmented(aug, seed)).collect();
    assert!(outs.iter().all(|o| *o == image || *o == flipped));
    assert!(outs.contains(&image) && outs.contains(&flipped));
}

#[test]
fn same_seed_same_augmentation() {
    let aug = Augment { shift: 2, hflip: true, crop_pad: 1, erase: true };
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![0; H * W * C];
        (0..10)
            .map(|_| {
                aug.apply(&picture(), H, W, C, &mut rng, &mut out);
                out.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn erasing_fills_one_rectangle_with_noise_half_the_time() {
    // Square grey, square colour (CIFAR) and a wide colour image.
    for (h, w, c) in [(28, 28, 1), (32, 32, 3), (20, 36, 3)] {
        let image: Vec<u8> = (0..h * w * c).map(|i| (i % 251) as u8).collect();
        let aug = Augment { erase: true, ..Augment::default() };
        assert!(!aug.is_identity());
        let mut erased = 0;
        let mut sizes = std::collections::HashSet::new();
        for seed in 0..200 {
            let mut out = vec![0; h * w * c];
            aug.apply(&image, h, w, c, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            let changed = |p: usize| out[p * c..(p + 1) * c] != image[p * c..(p + 1) * c];
            let pixels: Vec<(usize, usize)> = (0..h * w).filter(|&p| changed(p)).map(|p| (p / w, p % w)).collect();
            if pixels.is_empty() {
                continue;
            }
            erased += 1;
            let (ys, xs): (Vec<usize>, Vec<usize>) = pixels.iter().copied().unzip();
            let (y0, x0) = (*ys.iter().min().unwrap(), *xs.iter().min().unwrap());
            let (eh, ew) = (ys.iter().max().unwrap() - y0 + 1, xs.iter().max().unwrap() - x0 + 1);
            // Random fill keeps about one byte in 256 as it was, so the changed bytes of
            // every channel fill the box, and nothing outside it changes.
            let inside = |i: usize| (y0..y0 + eh).contains(&(i / c / w)) && (x0..x0 + ew).contains(&(i / c % w));
            let changed_bytes = (0..h * w * c).filter(|&i| out[i] != image[i]).count();
            assert!(changed_bytes * 10 >= eh * ew * c * 9, "{h}x{w}x{c} seed {seed}: scattered over {eh}x{ew}");
            assert!((0..h * w * c).all(|i| inside(i) || out[i] == image[i]));
            // 2-40 % of the area and aspect 0.3-3.3, give or take rounding each side to pixels.
            let (area, full, slack) = ((eh * ew) as f64, (h * w) as f64, (eh + ew) as f64 / 2.0 + 0.25);
            assert!((0.02 * full - slack..=0.4 * full + slack).contains(&area), "{h}x{w} seed {seed}: {eh}x{ew}");
            assert!((0.2..=5.0).contains(&(eh as f64 / ew as f64)), "{h}x{w} seed {seed}: {eh}x{ew}");
            sizes.insert((eh, ew));
        }
        assert!((70..=130).contains(&erased), "{h}x{w}x{c}: {erased} of 200 images erased");
        assert!(sizes.len() > 20, "{h}x{w}x{c}: only {} rectangle sizes", sizes.len());
    }
}

/// Needs Debian's `dataset-fashion-mnist`; skips, and says so, where it is not installed,
/// unless `FITNETS_REQUIRE_DATA` is set (`cargo xtask test`, so CI), where a missing data
/// set fails instead of passing unseen.
#[test]
fn real_fashion_mnist_if_installed() {
    let dir = Path::new(FASHION_MNIST_DIR);
    if !dir.exists() {
        assert!(
            std::env::var_os("FITNETS_REQUIRE_DATA").is_none(),
            "{FASHION_MNIST_DIR} is missing: install the Debian package dataset-fashion-mnist"
        );
        println!("skipped: {FASHION_MNIST_DIR} not found (install dataset-fashion-mnist)");
        return;
    }
    let (train, test) = data::fashion_mnist(dir).unwrap();
    assert_eq!((train.len(), test.len(), train.height, train.width, train.channels), (60000, 10000, 28, 28, 1));
    assert_eq!((train.classes, test.classes, train.images.len()), (10, 10, 60000 * 784));
    assert_eq!(FASHION_MNIST_LABELS[usize::from(train.label(0))], "Ankle boot");
    assert_eq!(train.label(0), 9);
}
