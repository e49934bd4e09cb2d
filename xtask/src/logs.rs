//! The firmware's defmt logs: decoded on the host with the string table in its ELF.

use std::io::{Read, Write as _};
use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{Context as _, anyhow};
use defmt_decoder::{DecodeError, Table};

/// Decodes the defmt stream `from` (QEMU's stdout, where semihosting writes) on a thread,
/// printing each line to stdout with `prefix`. The thread returns the lines when the
/// stream ends.
pub fn spawn_decoder(
    elf: &Path,
    prefix: String,
    mut from: impl Read + Send + 'static,
) -> anyhow::Result<JoinHandle<anyhow::Result<Vec<String>>>> {
    let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    // Parse once here, so a firmware without defmt symbols fails before QEMU starts.
    Table::parse(&bytes)
        .with_context(|| format!("reading the defmt table of {}", elf.display()))?
        .ok_or_else(|| anyhow!("{} has no defmt table (was it linked with -Tdefmt.x?)", elf.display()))?;
    Ok(std::thread::spawn(move || {
        let table = Table::parse(&bytes)?.ok_or_else(|| anyhow!("no defmt table"))?;
        let mut decoder = table.new_stream_decoder();
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            decoder.received(&buf[..n]);
            loop {
                match decoder.decode() {
                    Ok(frame) => {
                        let level = frame.level().map_or("", |l| l.as_str());
                        let line = format!("{level:<5} {}", frame.display_message());
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{prefix}{line}");
                        lines.push(line);
                    }
                    Err(DecodeError::UnexpectedEof) => break,
                    Err(DecodeError::Malformed) => {
                        let line = "error (a malformed defmt frame was skipped)".to_string();
                        println!("{prefix}{line}");
                        lines.push(line);
                    }
                }
            }
        }
        Ok(lines)
    }))
}
