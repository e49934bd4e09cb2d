//! CIFAR-10 in its binary version (`cifar-10-batches-bin`), converted to NHWC.
//!
//! Each batch file is a run of 3073-byte records: one label byte, then the 32x32 image as
//! three planes of 1024 bytes (red, green, blue), each plane row-major.

use std::path::Path;

use anyhow::{Context, bail};

use super::Dataset;

/// Image side in pixels.
pub const SIDE: usize = 32;

/// Colour channels: red, green, blue.
pub const CHANNELS: usize = 3;

/// Bytes per record: the label, then the pixels.
pub const RECORD: usize = 1 + SIDE * SIDE * CHANNELS;

/// The class names of the official release, used when `batches.meta.txt` is absent.
pub const CIFAR10_LABELS: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The five training batches, in the order they are concatenated.
const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

/// Loads CIFAR-10 from `dir`, the folder holding `data_batch_1.bin` .. `data_batch_5.bin`
/// and `test_batch.bin`: `(train, test)`, 50000 and 10000 images of 32x32x3 in the
/// official release. The class count is the number of names in `batches.meta.txt` if that
/// file is present, else ten; a label at or above it is an error.
pub fn load_cifar10(dir: &Path) -> anyhow::Result<(Dataset, Dataset)> {
    let classes = class_names(dir)?.len();
    let mut train = empty("cifar10-train", classes);
    for file in TRAIN_FILES {
        read_batch(&dir.join(file), &mut train)?;
    }
    let mut test = empty("cifar10-test", classes);
    read_batch(&dir.join("test_batch.bin"), &mut test)?;
    Ok((train, test))
}

/// The test batch alone (what an int8 model's evaluation needs).
pub fn load_cifar10_test(dir: &Path) -> anyhow::Result<Dataset> {
    let mut test = empty("cifar10-test", class_names(dir)?.len());
    read_batch(&dir.join("test_batch.bin"), &mut test)?;
    Ok(test)
}

/// The files [`load_cifar10`] reads from `dir`, in order (`batches.meta.txt` when present).
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = TRAIN_FILES.iter().chain(&["test_batch.bin"]).map(|f| dir.join(f)).collect();
    let meta = dir.join("batches.meta.txt");
    if meta.is_file() {
        files.push(meta);
    }
    files
}

/// The class names, one per non-empty line of `dir/batches.meta.txt`, or
/// [`CIFAR10_LABELS`] if that file does not exist.
pub fn class_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = dir.join("batches.meta.txt");
    if !path.exists() {
        return Ok(CIFAR10_LABELS.iter().map(|&s| s.to_owned()).collect());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if names.is_empty() || names.len() > 256 {
        bail!("{}: {} class names; 1 to 256 are supported", path.display(), names.len());
    }
    Ok(names)
}

fn empty(name: &str, classes: usize) -> Dataset {
    Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        height: SIDE,
        width: SIDE,
        channels: CHANNELS,
        classes,
        name: name.to_owned(),
    }
}

/// Appends the records of one batch file to `set`, planar pixels turned into NHWC.
fn read_batch(path: &Path, set: &mut Dataset) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        bail!(
            "{}: {} bytes is not a whole, non-zero number of {RECORD}-byte records ({} records and {} bytes over)",
            path.display(),
            bytes.len(),
            bytes.len() / RECORD,
            bytes.len() % RECORD
        );
    }
    const PLANE: usize = SIDE * SIDE;
    set.images.reserve(bytes.len() / RECORD * PLANE * CHANNELS);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let (label, planes) = (record[0], &record[1..]);
        if usize::from(label) >= set.classes {
            bail!("{}: record {i} has label {label}, but there are {} classes", path.display(), set.classes);
        }
        set.labels.push(label);
        for p in 0..PLANE {
            set.images.extend([planes[p], planes[PLANE + p], planes[2 * PLANE + p]]);
        }
    }
    Ok(())
}
