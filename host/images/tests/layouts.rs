//! Random folder trees, as a user's disk might hold them: classes with odd names,
//! empty folders, nested folders, links (some in loops), stray and damaged files, files
//! with wrong extensions. Loading each is an image set or an error that names a path
//! under the folder; never a panic.

use std::fs;
use std::path::Path;

use fitnets_images::{Conversion, Options, Resize, load};
use fitnets_tests::SplitMix;
use image::{DynamicImage, GrayImage, ImageFormat};

const NAMES: [&str; 10] = ["cat", "dog", "train", "test", "val", ".hidden", "a b", "ünï", "x.png", "0"];

/// A file: a good PNG, a good JPEG, a truncated PNG, text, empty, or random bytes, under
/// an image or another extension.
fn write_file(rng: &mut SplitMix, dir: &Path, good: &[u8], jpeg: &[u8]) {
    let ext = ["png", "jpg", "PNG", "txt", "gif", "tif", ""][rng.below(7)];
    let name = format!("{}{}{ext}", rng.below(1000), if ext.is_empty() { "" } else { "." });
    let bytes: Vec<u8> = match rng.below(6) {
        0 | 1 => good.to_vec(),
        2 => jpeg.to_vec(),
        3 => good[..rng.below(good.len())].to_vec(),
        4 => Vec::new(),
        _ => (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect(),
    };
    fs::write(dir.join(name), bytes).unwrap();
}

fn tree(rng: &mut SplitMix, root: &Path, dir: &Path, depth: usize, good: &[u8], jpeg: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    for _ in 0..rng.below(4) {
        write_file(rng, dir, good, jpeg);
    }
    if depth < 3 {
        for _ in 0..rng.below(4) {
            let sub = dir.join(NAMES[rng.below(NAMES.len())]);
            tree(rng, root, &sub, depth + 1, good, jpeg);
        }
    }
    #[cfg(unix)]
    if rng.below(8) == 0 {
        // A link to the root (a loop when inside it) or to a missing target.
        let target = if rng.below(2) == 0 { root.to_path_buf() } else { root.join("missing") };
        let _ = std::os::unix::fs::symlink(target, dir.join(format!("link{}", rng.below(100))));
    }
}

#[test]
fn random_folder_trees_load_or_name_a_path() {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let image = DynamicImage::from(GrayImage::from_fn(9, 7, |x, y| image::Luma([(x * 20 + y) as u8])));
    image.write_to(&mut bytes, ImageFormat::Png).unwrap();
    let good = bytes.into_inner();
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    let jpeg = bytes.into_inner();
    let mut rng = SplitMix(11);
    let (mut loaded, mut refused) = (0, 0);
    for case in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        // Half the trees start as a sound data set that the randomness then damages.
        if case % 4 < 2 {
            for class in &NAMES[..2 + rng.below(3)] {
                let class = if class.starts_with('.') { "dot" } else { class };
                fs::create_dir_all(root.join(class)).unwrap();
                for i in 0..30 {
                    fs::write(root.join(class).join(format!("{i}.png")), &good).unwrap();
                }
            }
        }
        tree(&mut rng, &root, &root, 0, &good, &jpeg);
        let conversion = Conversion { height: 6, width: 6, channels: 1 + 2 * (case % 2) as u8, resize: Resize::Fit };
        let skip = case % 4 == 0 || rng.below(2) == 0;
        let options = Options { conversion, skip_bad: skip, cache: rng.below(2) == 0 };
        match load(&root, &options) {
            Ok(set) => {
                loaded += 1;
                assert!(set.classes.len() >= 2);
                assert!(!set.train.labels.is_empty() && !set.test.labels.is_empty());
                let image_len = conversion.image_len();
                assert_eq!(set.train.pixels.len(), set.train.labels.len() * image_len);
                assert!(set.train.labels.iter().chain(&set.test.labels).all(|&l| usize::from(l) < set.classes.len()));
            }
            Err(e) => {
                refused += 1;
                let message = format!("{e:#}");
                assert!(message.contains(&root.display().to_string()), "case {case}: no path in `{message}`");
            }
        }
    }
    println!("300 random folder trees: {loaded} loaded, {refused} refused with a path, 0 panics");
    assert!(loaded > 10 && refused > 10, "{loaded} loaded, {refused} refused: the trees should give both");
}
