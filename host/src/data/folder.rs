//! Image folders (`fitnets-images`) as [`Dataset`]s, with what loading them did said on
//! standard error: decoded or from the cache, files skipped, files ignored.

use std::path::Path;
use std::time::Instant;

use fitnets_images::{Conversion, Loaded, Options, Resize, Source};
use fitnets_shared::format::MAX_LABEL_LEN;

use super::Dataset;

/// Bad files listed by name when `--skip-bad` skips them; the rest are counted.
const SHOWN: usize = 5;

/// An image folder loaded for a model input of `[height, width, channels]`.
#[derive(Clone, Debug)]
pub struct FolderSet {
    pub train: Dataset,
    pub test: Dataset,
    /// Class names from the folder names.
    pub classes: Vec<String>,
    /// SHA-256 of the layout, class names and files.
    pub files_hash: String,
    /// Bad files skipped (`--skip-bad`).
    pub skipped: usize,
}

/// The conversion of a folder's images to `input`, or why there is none.
pub fn conversion(input: [usize; 3], resize: Resize) -> anyhow::Result<Conversion> {
    Conversion::new(input, resize).map_err(anyhow::Error::msg)
}

/// Loads the image folder `dir` converted to `input`, the sets named `<name>-train`
/// and `<name>-test`.
pub fn load(dir: &Path, name: &str, input: [usize; 3], resize: Resize, skip_bad: bool) -> anyhow::Result<FolderSet> {
    let conversion = conversion(input, resize)?;
    let started = Instant::now();
    let loaded = fitnets_images::load(dir, &Options { conversion, skip_bad, cache: true })?;
    report(dir, &loaded, &conversion, started.elapsed().as_secs_f64());
    // The names become the blob's labels: refused now, not after training.
    if let Some(long) = loaded.classes.iter().find(|c| c.len() > MAX_LABEL_LEN) {
        anyhow::bail!(
            "{}: the class folder name `{long}` is {} bytes, and a model's labels hold at most {MAX_LABEL_LEN}: \
             rename the folder",
            dir.display(),
            long.len()
        );
    }
    let set = |images: fitnets_images::ImageSet, part: &str| Dataset {
        images: images.pixels,
        labels: images.labels,
        height: input[0],
        width: input[1],
        channels: input[2],
        classes: loaded.classes.len(),
        name: format!("{name}-{part}"),
    };
    Ok(FolderSet {
        train: set(loaded.train, "train"),
        test: set(loaded.test, "test"),
        skipped: loaded.skipped.len(),
        classes: loaded.classes,
        files_hash: loaded.files_hash,
    })
}

/// The content hash of the image folder `dir` without decoding it.
pub fn files_hash(dir: &Path, skip_bad: bool) -> anyhow::Result<String> {
    fitnets_images::files_hash(dir, skip_bad)
}

fn report(dir: &Path, loaded: &Loaded, conversion: &Conversion, seconds: f64) {
    let images = loaded.train.labels.len() + loaded.test.labels.len();
    let layout = if loaded.split { "train/ and test/" } else { "test split by path hash" };
    match &loaded.source {
        Source::Cache(path) => eprintln!(
            "{}: {images} images of {} classes ({layout}) as {conversion}, from the cache {} ({seconds:.1} s)",
            dir.display(),
            loaded.classes.len(),
            path.display()
        ),
        Source::Decoded { cached } => {
            eprintln!(
                "{}: decoded {images} images of {} classes ({layout}) as {conversion} in {seconds:.1} s",
                dir.display(),
                loaded.classes.len()
            );
            match cached {
                Ok(path) => eprintln!("  cached in {} for later runs", path.display()),
                Err(why) => eprintln!("  not cached ({why}): later runs decode again"),
            }
        }
    }
    if !loaded.skipped.is_empty() {
        eprintln!("  skipped {} bad files (--skip-bad):", loaded.skipped.len());
        for skipped in loaded.skipped.iter().take(SHOWN) {
            eprintln!("    {}: {}", skipped.rel, skipped.reason);
        }
        if loaded.skipped.len() > SHOWN {
            eprintln!("    and {} more", loaded.skipped.len() - SHOWN);
        }
    }
    if !loaded.ignored.is_empty() {
        eprintln!(
            "  ignored {} files outside the class folders (first: {})",
            loaded.ignored.len(),
            loaded.ignored[0].display()
        );
    }
}
