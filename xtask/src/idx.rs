//! IDX files (MNIST's format) of `u8` elements, raw or gzip-compressed: read by
//! `classify`, written for the test's random images.
//!
//! A file is a 4-byte magic (two zero bytes, the element type `0x08`, the number of
//! dimensions), one big-endian `u32` per dimension, then the elements in row-major order.
//! This is a small copy of the host's reader (`host/src/data/idx.rs`): xtask cannot use
//! that one without pulling in burn.

use std::io::{self, Read, Write as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use flate2::read::MultiGzDecoder;

/// The element type code of `u8` data, the only one supported.
const U8: u8 = 0x08;
/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of an IDX file.
#[derive(Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first; between one and four, none zero.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` elements, row-major.
    pub data: Vec<u8>,
}

/// Dimensions only: the data would drown a log.
impl std::fmt::Debug for Idx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idx").field("dims", &self.dims).finish_non_exhaustive()
    }
}

/// Whether `path` is a file that starts like an IDX file of `u8` (two zero bytes and
/// the type `0x08`) or a gzip stream: not a picture or a folder.
pub fn looks_like_idx(path: &Path) -> bool {
    let mut head = [0u8; 3];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && (head[..2] == GZIP_MAGIC || head == [0, 0, U8])
}

/// Reads an IDX file, gunzipping it first if it starts with the gzip magic, whatever its
/// name. Errors name the file.
pub fn read(path: &Path) -> anyhow::Result<Idx> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = if bytes.starts_with(&GZIP_MAGIC) {
        parse(MultiGzDecoder::new(bytes.as_slice())).context("after gunzip")
    } else {
        parse(bytes.as_slice())
    };
    parsed.with_context(|| format!("{} is not a valid IDX file of u8", path.display()))
}

/// Writes `data` as a raw (uncompressed) IDX file of `dims`.
pub fn write(path: &Path, dims: &[usize], data: &[u8]) -> anyhow::Result<()> {
    assert_eq!(dims.iter().product::<usize>(), data.len(), "IDX dims and data disagree");
    let mut bytes = vec![0, 0, U8, u8::try_from(dims.len()).context("too many dimensions")?];
    for &dim in dims {
        bytes.extend_from_slice(&u32::try_from(dim).context("dimension too large for IDX")?.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&bytes).with_context(|| format!("writing {}", path.display()))
}

/// Parses an IDX stream, reading at most one byte past the data that the header
/// declares, so that a corrupt header cannot make it allocate more than the file holds.
fn parse(mut reader: impl Read) -> anyhow::Result<Idx> {
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).context("shorter than the 4-byte magic")?;
    if magic[..2] != [0, 0] {
        bail!("bad magic: starts with {:02x} {:02x}, an IDX file starts with 00 00", magic[0], magic[1]);
    }
    if magic[2] != U8 {
        bail!("element type 0x{:02x}; only 0x08 (u8) is supported", magic[2]);
    }
    let rank = usize::from(magic[3]);
    if !(1..=4).contains(&rank) {
        bail!("{rank} dimensions; 1 to 4 are supported");
    }
    let mut header = vec![0u8; 4 * rank];
    reader.read_exact(&mut header).with_context(|| format!("truncated header ({rank} dimensions)"))?;
    let dims: Vec<usize> =
        header.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    if dims.contains(&0) {
        bail!("dimensions {dims:?} include a zero");
    }
    let Some(expected) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        bail!("dimensions {dims:?} are too large to hold in memory");
    };
    let mut data = Vec::new();
    reader.by_ref().take((expected as u64).saturating_add(1)).read_to_end(&mut data)?;
    if data.len() < expected {
        bail!("truncated: the header says {expected} bytes of data ({dims:?}), the file has {}", data.len());
    }
    if data.len() > expected {
        let actual = data.len() as u64 + io::copy(&mut reader, &mut io::sink())?;
        bail!("trailing bytes: the header says {expected} bytes of data ({dims:?}), the file has {actual}");
    }
    Ok(Idx { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expected: Result<(&[usize], &[u8]), &str>) {
        let got = parse(bytes).map(|idx| (idx.dims, idx.data)).map_err(|e| format!("{e:#}"));
        match (got, expected) {
            (Ok((dims, data)), Ok((want_dims, want_data))) => {
                assert_eq!((&dims[..], &data[..]), (want_dims, want_data));
            }
            (Err(e), Err(want)) => assert!(e.contains(want), "`{e}` does not contain `{want}`"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        check(&[0, 0, 8, 1, 0, 0, 0, 2, 7, 9], Ok((&[2], &[7, 9])));
        check(&[0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2], Ok((&[1, 2], &[1, 2])));
        check(&[0, 0, 8], Err("4-byte magic"));
        check(&[1, 0, 8, 1, 0, 0, 0, 1, 0], Err("bad magic"));
        check(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0], Err("element type 0x0d"));
        check(&[0, 0, 8, 5], Err("5 dimensions"));
        check(&[0, 0, 8, 2, 0, 0, 0, 1], Err("truncated header"));
        check(&[0, 0, 8, 1, 0, 0, 0, 0], Err("include a zero"));
        check(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2], Err("truncated: the header says 3"));
        check(&[0, 0, 8, 1, 0, 0, 0, 1, 1, 2, 3], Err("the file has 3"));
    }

    #[test]
    fn written_files_read_back_raw_and_gzipped() {
        let dir = std::env::temp_dir().join(format!("xtask-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let raw = dir.join("images-idx3-ubyte");
        write(&raw, &[2, 3, 4], &data).unwrap();
        let gz = dir.join("images-idx3-ubyte.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&std::fs::read(&raw).unwrap()).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        for path in [&raw, &gz] {
            assert_eq!(read(path).unwrap(), Idx { dims: vec![2, 3, 4], data: data.clone() });
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
