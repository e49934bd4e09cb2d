//! A board's serial device (`/dev/ttyACM0`, `/dev/ttyUSB0`, …) opened as a plain file,
//! set to raw 8N1 at a baud rate by `stty` (coreutils, on every Unix). No serial crate:
//! the port needs no discovery and no read timeouts of its own (`link`'s reader thread
//! lets every wait time out), so one `stty` call is all a crate would add; `serialport`
//! with its default features off (no libudev) would do the same on Windows too, should
//! the host ever need it.
//!
//! The device is first opened non-blocking, because opening a tty without `CLOCAL` waits
//! for a carrier that a USB serial bridge may never raise; once `stty` has set `clocal`
//! it is opened again, blocking, for the link, and the first handle is dropped.

use std::fs::File;
use std::path::Path;

use anyhow::bail;

/// Opens `path` at `baud`, raw, and returns a reader and a writer on it.
#[cfg(unix)]
pub fn open(path: &Path, baud: u32) -> anyhow::Result<(File, File)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::process::{Command, Stdio};

    use anyhow::Context as _;

    let open = |flags: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | flags)
            .open(path)
            .with_context(|| format!("opening the serial device {}", path.display()))
    };
    let first = open(libc::O_NONBLOCK)?;
    // stty works on its standard input, which is the same everywhere (`-F` is `-f` on BSD).
    let mut stty = Command::new("stty");
    stty.args(["raw", "-echo", "cs8", "-parenb", "-cstopb", "clocal", "-crtscts", "-ixon", "-ixoff"]);
    stty.arg(baud.to_string()).stdin(Stdio::from(first.try_clone()?)).stderr(Stdio::piped());
    let out = stty.output().context("running `stty` to set the serial device to raw mode")?;
    if !out.status.success() {
        bail!(
            "`stty` could not set {} to raw mode at {baud} baud: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let file = open(0)?;
    drop(first);
    let reader = file.try_clone().with_context(|| format!("cloning the handle of {}", path.display()))?;
    Ok((reader, file))
}

/// Serial devices are opened the Unix way only.
#[cfg(not(unix))]
pub fn open(path: &Path, _baud: u32) -> anyhow::Result<(File, File)> {
    bail!("--port {} needs a Unix host (the serial device is set up with `stty`)", path.display())
}
