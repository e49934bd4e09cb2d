//! The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed: read by the host's
//! data loader and by `cargo xtask classify`, written for tests' random images.
//!
//! A file is a 4-byte magic (two zero bytes, the element type, the number of dimensions),
//! one big-endian `u32` per dimension, then the elements in row-major order. Only `u8`
//! elements (type `0x08`) are supported, which is what every image and label file uses.
//! Reading never panics and never allocates more than the file holds; every error names
//! the file.

use std::fmt;
use std::io::{self, Read, Write as _};
use std::path::Path;

use anyhow::Context as _;
use flate2::read::MultiGzDecoder;

/// The element type code of `u8` data.
const U8: u8 = 0x08;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of an IDX file of `u8` elements.
#[derive(Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first; between one and four, none zero.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` elements, row-major.
    pub data: Vec<u8>,
}

/// Dimensions only: the data would drown a log.
impl fmt::Debug for Idx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idx").field("dims", &self.dims).finish_non_exhaustive()
    }
}

/// Reads an IDX file of `u8` elements. The file is decompressed first if it starts with
/// the gzip magic `1f 8b`, whatever its name.
pub fn read(path: &Path) -> anyhow::Result<Idx> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let shown = path.display();
    if bytes.starts_with(&GZIP_MAGIC) {
        parse(MultiGzDecoder::new(bytes.as_slice())).map_err(|e| e.with_file(&shown, "after gunzip, "))
    } else {
        parse(bytes.as_slice()).map_err(|e| e.with_file(&shown, ""))
    }
}

/// Whether `path` is a file that starts like an IDX file of `u8` (two zero bytes and
/// the type `0x08`) or a gzip stream: not a picture or a folder.
pub fn looks_like_idx(path: &Path) -> bool {
    let mut head = [0u8; 3];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && (head[..2] == GZIP_MAGIC || head == [0, 0, U8])
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

/// What is wrong with the bytes of an IDX file, before the file name is known.
enum Fault {
    Io(io::Error),
    Format(String),
}

impl Fault {
    /// The error for the user: the file, then the fault. `stage` says whether the fault
    /// was seen in the decompressed stream.
    fn with_file(self, file: &dyn fmt::Display, stage: &str) -> anyhow::Error {
        match self {
            Fault::Io(e) => anyhow::anyhow!("{file}: {stage}read error: {e}"),
            Fault::Format(what) => anyhow::anyhow!("{file}: {stage}{what}"),
        }
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

macro_rules! fault {
    ($($arg:tt)*) => { return Err(Fault::Format(format!($($arg)*))) };
}

/// Parses an IDX stream, reading at most one byte past the data that the header declares
/// (then only counting the rest), so that a corrupt header cannot make it allocate more
/// than the file holds.
fn parse(mut reader: impl Read) -> Result<Idx, Fault> {
    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic)?;
    if got == 0 {
        fault!("file is empty");
    }
    if got < 4 {
        fault!("truncated: {got} bytes, shorter than the 4-byte magic");
    }
    if magic[..2] != [0, 0] {
        fault!("bad magic: starts with {:02x} {:02x}, an IDX file starts with 00 00", magic[0], magic[1]);
    }
    if magic[2] != U8 {
        fault!("unsupported element type 0x{:02x} ({}); only 0x08 (u8) is supported", magic[2], type_name(magic[2]));
    }
    let rank = usize::from(magic[3]);
    if !(1..=4).contains(&rank) {
        fault!("{rank} dimensions; 1 to 4 are supported");
    }
    let mut header = vec![0u8; 4 * rank];
    let got = read_full(&mut reader, &mut header)?;
    if got < header.len() {
        fault!("truncated: header declares {rank} dimensions ({} bytes), file has {got} after the magic", header.len());
    }
    let dims: Vec<usize> =
        header.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    if let Some(zero) = dims.iter().position(|&d| d == 0) {
        fault!("dimension {zero} of {dims:?} is zero");
    }
    let Some(expected) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        fault!("dimensions {dims:?} are too large to hold in memory");
    };
    let mut data = Vec::new();
    reader.by_ref().take((expected as u64).saturating_add(1)).read_to_end(&mut data)?;
    if data.len() < expected {
        fault!("truncated: header says {expected} bytes of data, file has {}", data.len());
    }
    if data.len() > expected {
        let actual = data.len() as u64 + io::copy(&mut reader, &mut io::sink())?;
        fault!("trailing bytes: header says {expected} bytes of data, file has {actual}");
    }
    Ok(Idx { dims, data })
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The IDX names of the element type codes, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => "not an IDX type",
    }
}
