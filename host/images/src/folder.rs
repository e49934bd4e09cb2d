//! Finding the images of a folder data set and their classes, without reading them.
//!
//! Two layouts are recognised:
//! - **classes at the top**: `DIR/<class>/...`, one folder per class; the test set is
//!   the images whose relative path hashes into the lowest [`TEST_PERCENT`] of 100
//!   buckets, so an image's split depends on its own path only: the same for every
//!   seed, every run and every later evaluation, and unchanged when images are added.
//! - **split**: `DIR/train/<class>/...` and `DIR/test/<class>/...`. The classes are the
//!   training folders'; a test folder must name one of them.
//!
//! Inside a class folder images may sit at any depth; symbolic links are followed and
//! a link back to a folder already being walked is an error. Names starting with `.`
//! are hidden and skipped (`.DS_Store`, the cache folder). Files outside class folders
//! are ignored and counted. A file without an image extension inside a class folder is
//! a bad file, as an image that does not decode is.
//!
//! Images are ordered by file name, then class, then relative path: a set written out
//! with numbered file names (`00000.png`, `00001.png`, ...) keeps its original order.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use sha2::{Digest as _, Sha256};

use crate::convert::{EXTENSIONS, has_image_extension};

/// The share of a class-per-folder set that becomes its test set, in percent.
pub const TEST_PERCENT: u64 = 10;

/// The most classes: labels are bytes.
pub const MAX_CLASSES: usize = 256;

/// The deepest folder nesting walked inside a class folder.
const MAX_DEPTH: usize = 32;

/// One image file, found but not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub path: PathBuf,
    /// The path below the data set's folder, `/`-separated (`train/cat/001.png`): how
    /// messages name the file and what the content hash records.
    pub rel: String,
    /// Index into [`Folder::classes`].
    pub label: u8,
    /// Whether the file has an image extension; one that does not is a bad file.
    pub image_name: bool,
    file_name: OsString,
}

/// A folder data set, scanned.
#[derive(Clone, Debug)]
pub struct Folder {
    pub dir: PathBuf,
    /// Class names, sorted: label `i` is `classes[i]`.
    pub classes: Vec<String>,
    pub train: Vec<Item>,
    pub test: Vec<Item>,
    /// Whether the set came as `train/` and `test/` folders.
    pub split: bool,
    /// Files outside any class folder, ignored.
    pub ignored: Vec<PathBuf>,
}

impl Folder {
    /// Every item, training ones first.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.train.iter().chain(&self.test)
    }
}

/// Whether `dir` looks like an image folder data set: it has at least one visible
/// subfolder (IDX and CIFAR-10 sets are flat folders of files).
pub fn looks_like_folder(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| !hidden(&e.file_name()) && is_dir(&e.path())))
        .unwrap_or(false)
}

/// Scans `dir` (see the module documentation). Refuses a folder without classes, a
/// single class, a class without image files, more than [`MAX_CLASSES`] classes,
/// class names that are not UTF-8, symbolic link loops and a test split that leaves a
/// set or a class without images.
pub fn scan(dir: &Path) -> anyhow::Result<Folder> {
    let subdirs = subfolders(dir)?;
    let names: Vec<&str> = subdirs.iter().map(|(name, _)| name.as_str()).collect();
    let mut ignored = loose_files(dir)?;
    let split = names.contains(&"train") && names.contains(&"test");
    let folder = if split {
        if let Some(other) = names.iter().find(|n| !["train", "test"].contains(n)) {
            bail!(
                "{}: besides train/ and test/ there is {other}/: fitnets holds validation images out of train/ \
                 itself; move {other}/ out of {} (or merge it into train/)",
                dir.display(),
                dir.display()
            );
        }
        let train_dir = dir.join("train");
        let test_dir = dir.join("test");
        ignored.extend(loose_files(&train_dir)?);
        ignored.extend(loose_files(&test_dir)?);
        let classes = class_names(&train_dir)?;
        let train = class_items(dir, &train_dir, &classes, &classes)?;
        let test_classes = class_names(&test_dir)?;
        if let Some(extra) = test_classes.iter().find(|c| !classes.contains(c)) {
            bail!(
                "{}: test/{extra}/ is a class that train/ does not have ({}): rename or remove it",
                dir.display(),
                classes.join(", ")
            );
        }
        let test = class_items(dir, &test_dir, &test_classes, &classes)?;
        ensure!(!test.is_empty(), "{}: test/ holds no image files", dir.display());
        Folder { dir: dir.to_path_buf(), classes, train, test, split, ignored }
    } else {
        let classes = class_names(dir)?;
        let all = class_items(dir, dir, &classes, &classes)?;
        let total = all.len();
        let (test, train): (Vec<Item>, Vec<Item>) = all.into_iter().partition(|item| in_test(&item.rel));
        ensure!(
            !test.is_empty(),
            "{}: {} image files are too few to hold out a test set ({TEST_PERCENT} % by a hash of each path); \
             add images, or give train/ and test/ folders",
            dir.display(),
            total
        );
        for (label, class) in classes.iter().enumerate() {
            ensure!(
                train.iter().any(|item| usize::from(item.label) == label),
                "{}: all images of class {class} fell into the test set ({TEST_PERCENT} % by a hash of each path): \
                 add images to {class}/, or give train/ and test/ folders",
                dir.display()
            );
        }
        Folder { dir: dir.to_path_buf(), classes, train, test, split, ignored }
    };
    Ok(folder)
}

/// Whether an image with this relative path belongs to the test set of a
/// class-per-folder data set.
fn in_test(rel: &str) -> bool {
    let digest = Sha256::new().chain_update(b"fitnets test split\0").chain_update(rel.as_bytes()).finalize();
    let bucket = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % 100;
    bucket < TEST_PERCENT
}

/// The visible subfolders of `dir`, sorted by name; names must be UTF-8.
fn subfolders(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read the folder {}", dir.display()))?;
        let (name, path) = (entry.file_name(), entry.path());
        if hidden(&name) || !is_dir(&path) {
            continue;
        }
        let Some(name) = name.to_str() else {
            bail!("{}: a folder name is not UTF-8 (a class name must be text): rename it", path.display());
        };
        found.push((name.to_string(), path));
    }
    found.sort();
    Ok(found)
}

/// The class folders of `root`, by name.
fn class_names(root: &Path) -> anyhow::Result<Vec<String>> {
    let classes: Vec<String> = subfolders(root)?.into_iter().map(|(name, _)| name).collect();
    ensure!(
        !classes.is_empty(),
        "{}: no class folders: an image folder data set has one subfolder per class (DIR/<class>/*.png), or \
         train/ and test/ each with those",
        root.display()
    );
    ensure!(
        classes.len() >= 2,
        "{}: only one class folder ({}/): a classifier needs at least two classes",
        root.display(),
        classes[0]
    );
    ensure!(
        classes.len() <= MAX_CLASSES,
        "{}: {} class folders; at most {MAX_CLASSES} are supported",
        root.display(),
        classes.len()
    );
    Ok(classes)
}

/// The items of the classes `present` under `root`, labelled by their place in
/// `classes`, ordered as the module documentation says.
fn class_items(base: &Path, root: &Path, present: &[String], classes: &[String]) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for class in present {
        let label = classes.iter().position(|c| c == class).expect("present classes are among the classes");
        let label = u8::try_from(label).expect("at most 256 classes");
        let class_dir = root.join(class);
        let before = items.len();
        let mut stack = Vec::new();
        walk(base, &class_dir, label, &mut stack, &mut items)?;
        ensure!(
            items[before..].iter().any(|item| item.image_name),
            "{}: the class folder holds no image files ({}): add images or remove the folder",
            class_dir.display(),
            EXTENSIONS.join(", ")
        );
    }
    items.sort_by(|a, b| (&a.file_name, a.label, &a.rel).cmp(&(&b.file_name, b.label, &b.rel)));
    Ok(items)
}

/// Adds the files under `dir` (recursively, following links) to `items`. `stack` holds
/// the canonical paths of the folders being walked, to catch link loops.
fn walk(base: &Path, dir: &Path, label: u8, stack: &mut Vec<PathBuf>, items: &mut Vec<Item>) -> anyhow::Result<()> {
    let canonical = fs::canonicalize(dir).with_context(|| format!("cannot open the folder {}", dir.display()))?;
    if let Some(first) = stack.iter().find(|p| **p == canonical) {
        bail!(
            "{}: a symbolic link loop: this folder is {}, which is being walked already; remove the link",
            dir.display(),
            first.display()
        );
    }
    ensure!(stack.len() < MAX_DEPTH, "{}: folders nested deeper than {MAX_DEPTH} levels", dir.display());
    stack.push(canonical);
    for (name, path) in visible_entries(dir)? {
        if is_dir(&path) {
            walk(base, &path, label, stack, items)?;
            continue;
        }
        let rel = path.strip_prefix(base).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        items.push(Item { image_name: has_image_extension(&name), path, rel, label, file_name: name });
    }
    stack.pop();
    Ok(())
}

/// The entries of `dir` that are not hidden, as (name, path), sorted by name.
pub(crate) fn visible_entries(dir: &Path) -> anyhow::Result<Vec<(OsString, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read the folder {}", dir.display()))?;
        if !hidden(&entry.file_name()) {
            entries.push((entry.file_name(), entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Files (not folders, not hidden) directly in `dir`.
fn loose_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    Ok(entries.flatten().filter(|e| !hidden(&e.file_name()) && !is_dir(&e.path())).map(|e| e.path()).collect())
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Whether `path` is a folder, following links (a broken link is not).
pub(crate) fn is_dir(path: &Path) -> bool {
    fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false)
}
