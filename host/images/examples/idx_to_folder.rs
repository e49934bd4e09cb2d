//! Writes an IDX data set (MNIST's four files, raw or gzip) as an image folder of PNG
//! files: `OUT/train/<class>/NNNNN.png` and `OUT/test/<class>/NNNNN.png`, numbered in
//! the IDX order, so that loading the folder gives the IDX set's images in its order.
//!
//! `cargo run --release -p fitnets-images --example idx_to_folder -- IDX_DIR OUT [NAMES]`
//! with NAMES the class folder names, comma-separated (default: the class numbers).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(idx_dir), Some(out)) = (args.first(), args.get(1)) else {
        bail!("usage: idx_to_folder IDX_DIR OUT [NAMES]");
    };
    let names: Option<Vec<String>> = args.get(2).map(|n| n.split(',').map(str::to_string).collect());
    let (idx_dir, out) = (Path::new(idx_dir), PathBuf::from(out));
    ensure!(!out.exists(), "{} exists already: choose a new folder", out.display());
    for (prefix, part) in [("train", "train"), ("t10k", "test")] {
        let (dims, images) = read_idx(&find(idx_dir, &format!("{prefix}-images-idx3-ubyte"))?)?;
        let (_, labels) = read_idx(&find(idx_dir, &format!("{prefix}-labels-idx1-ubyte"))?)?;
        ensure!(dims.len() == 3 && dims[0] == labels.len(), "{prefix}: unexpected shapes {dims:?}");
        let (h, w) = (dims[1] as u32, dims[2] as u32);
        let class_name = |label: u8| match &names {
            Some(names) => names.get(usize::from(label)).cloned().unwrap_or_else(|| label.to_string()),
            None => label.to_string(),
        };
        labels
            .iter()
            .map(|&l| class_name(l))
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .try_for_each(|c| std::fs::create_dir_all(out.join(part).join(c)))?;
        images.par_chunks(dims[1] * dims[2]).zip(labels.par_iter()).enumerate().try_for_each(
            |(i, (pixels, &label))| {
                let image = image::GrayImage::from_raw(w, h, pixels.to_vec()).expect("sized");
                let path = out.join(part).join(class_name(label)).join(format!("{i:05}.png"));
                image.save(&path).with_context(|| format!("writing {}", path.display()))
            },
        )?;
        println!("{part}: {} images written", labels.len());
    }
    Ok(())
}

fn find(dir: &Path, base: &str) -> anyhow::Result<PathBuf> {
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(base);
    ensure!(raw.is_file(), "{}: no {base}[.gz]", dir.display());
    Ok(raw)
}

/// An IDX file of `u8`: dimensions and elements.
fn read_idx(path: &Path) -> anyhow::Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        out
    } else {
        raw
    };
    ensure!(bytes.len() >= 4 && bytes[..3] == [0, 0, 8], "{}: not an IDX file of bytes", path.display());
    let n = usize::from(bytes[3]);
    let dims: Vec<usize> =
        (0..n).map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize).collect();
    let data = bytes[4 + 4 * n..].to_vec();
    ensure!(data.len() == dims.iter().product::<usize>(), "{}: wrong length", path.display());
    Ok((dims, data))
}
