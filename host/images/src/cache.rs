//! The decoded set, kept beside the data so later loads skip decoding.
//!
//! A cache file lives in `DIR/.fitnets-cache/` and is named by its key, the SHA-256 of
//! the files' content hash and the conversion; a changed file, a different input size
//! or resize mode each give another key. The file ends with the SHA-256 of everything
//! before it: a cache that is truncated or damaged is ignored and rebuilt, never
//! trusted. Files are written to a temporary name and renamed, so a reader never sees
//! half a file. Removing the folder is always safe.
//!
//! Layout, integers little-endian `u64`: magic, the format version (`u32`), key (32 bytes),
//! height, width, channels, class count and each name (length, bytes), training and
//! test counts, skipped count and each (path, reason), then training labels, training
//! pixels, test labels, test pixels, and the digest.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{Conversion, ImageSet, Skipped};

/// The folder of cache files inside a data set's folder (hidden: scans skip it).
pub const CACHE_DIR: &str = ".fitnets-cache";

const MAGIC: &[u8; 16] = b"fitnets-images\0\0";

/// The layout version; files of another are ignored.
const FORMAT: u32 = 1;

/// What a cache file holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Cached {
    pub classes: Vec<String>,
    pub train: ImageSet,
    pub test: ImageSet,
    pub skipped: Vec<Skipped>,
}

/// The cache key of a folder's files under a conversion (with `skip_bad`, whose sets
/// differ when files are bad).
pub fn key(files_hash: &str, conversion: &Conversion, skip_bad: bool) -> [u8; 32] {
    Sha256::new()
        .chain_update(MAGIC)
        .chain_update(FORMAT.to_le_bytes())
        .chain_update(files_hash.as_bytes())
        .chain_update(conversion.height.to_le_bytes())
        .chain_update(conversion.width.to_le_bytes())
        .chain_update([conversion.channels, skip_bad as u8])
        .chain_update(conversion.resize.name().as_bytes())
        .finalize()
        .into()
}

/// Where the cache file of `key` lives for the data set in `dir`.
pub fn path(dir: &Path, key: &[u8; 32]) -> PathBuf {
    let name: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(CACHE_DIR).join(format!("{name}.images"))
}

/// The cached set at `path` if it is there, whole and made for `key` and `conversion`;
/// `Err` says why a file that exists was not used.
pub fn read(path: &Path, key: &[u8; 32], conversion: &Conversion) -> Result<Option<Cached>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&bytes, key, conversion).map(Some).map_err(|why| format!("{} is not usable ({why})", path.display()))
}

fn parse(bytes: &[u8], key: &[u8; 32], conversion: &Conversion) -> Result<Cached, &'static str> {
    let body_len = bytes.len().checked_sub(32).ok_or("truncated")?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err("damaged: its checksum does not match");
    }
    let mut r = Reader { rest: body };
    if r.take(16)? != MAGIC || r.take(4)? != FORMAT.to_le_bytes() {
        return Err("another format");
    }
    if r.take(32)? != key {
        return Err("made for other files or settings");
    }
    let shape = [r.u64()?, r.u64()?, r.u64()?];
    let want = [u64::from(conversion.height), u64::from(conversion.width), u64::from(conversion.channels)];
    if shape != want {
        return Err("made for another input shape");
    }
    let classes = (0..r.count()?).map(|_| r.text()).collect::<Result<Vec<_>, _>>()?;
    let (train_len, test_len) = (r.count()?, r.count()?);
    let skipped =
        (0..r.count()?).map(|_| Ok(Skipped { rel: r.text()?, reason: r.text()? })).collect::<Result<Vec<_>, _>>()?;
    let image_len = conversion.image_len();
    let mut set = |n: usize| -> Result<ImageSet, &'static str> {
        let labels = r.take(n)?.to_vec();
        let pixels = r.take(n.checked_mul(image_len).ok_or("too large")?)?.to_vec();
        if labels.iter().any(|&l| usize::from(l) >= classes.len()) {
            return Err("a label out of range");
        }
        Ok(ImageSet { pixels, labels })
    };
    let (train, test) = (set(train_len)?, set(test_len)?);
    if !r.rest.is_empty() {
        return Err("trailing bytes");
    }
    Ok(Cached { classes, train, test, skipped })
}

/// Writes the cache file atomically (temporary file, then rename).
pub fn write(path: &Path, key: &[u8; 32], conversion: &Conversion, cached: &Cached) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(cached.train.pixels.len() + cached.test.pixels.len() + 4096);
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&FORMAT.to_le_bytes());
    body.extend_from_slice(key);
    for v in [u64::from(conversion.height), u64::from(conversion.width), u64::from(conversion.channels)] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    let put_len = |body: &mut Vec<u8>, n: usize| body.extend_from_slice(&(n as u64).to_le_bytes());
    let put_text = |body: &mut Vec<u8>, text: &str| {
        put_len(body, text.len());
        body.extend_from_slice(text.as_bytes());
    };
    put_len(&mut body, cached.classes.len());
    for class in &cached.classes {
        put_text(&mut body, class);
    }
    put_len(&mut body, cached.train.labels.len());
    put_len(&mut body, cached.test.labels.len());
    put_len(&mut body, cached.skipped.len());
    for skipped in &cached.skipped {
        put_text(&mut body, &skipped.rel);
        put_text(&mut body, &skipped.reason);
    }
    for set in [&cached.train, &cached.test] {
        body.extend_from_slice(&set.labels);
        body.extend_from_slice(&set.pixels);
    }
    let digest = Sha256::digest(&body);
    let dir = path.parent().expect("a cache file is inside the cache folder");
    fs::create_dir_all(dir)?;
    let temp =
        dir.join(format!(".{}.{}.tmp", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(&body)?;
        file.write_all(&digest)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Bounds-checked reading of a cache body.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.rest.len() {
            return Err("truncated");
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A count or length, which cannot exceed the bytes left.
    fn count(&mut self) -> Result<usize, &'static str> {
        let n = self.u64()?;
        usize::try_from(n).ok().filter(|&n| n <= self.rest.len()).ok_or("a count larger than the file")
    }

    fn text(&mut self) -> Result<String, &'static str> {
        let n = self.count()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "text that is not UTF-8")
    }
}
