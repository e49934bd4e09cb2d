//! The host's end of a `serve` firmware's UART: `shared::wire` frames over any byte
//! stream (QEMU's UART on a loopback socket, or a board's serial device).
//!
//! A thread reads the stream and splits it into frames at each delimiter, so that waiting
//! for a response can time out on a stream that has no timeouts of its own (a tty).

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fitnets_shared::wire::{self, ModelInfo, Request, Response};

/// A response frame longer than this is not one the firmware sends: the line is noise.
const MAX_FRAME: usize = 1 << 20;

/// Frames to and from a device.
pub struct Link {
    writer: Box<dyn Write + Send>,
    frames: Receiver<std::io::Result<Vec<u8>>>,
    /// Names the link in errors: the serial device, or QEMU's board.
    pub name: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What `Info` said, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub protocol: u8,
    pub name: String,
    pub input: fitnets_shared::Shape,
    pub classes: u16,
    pub arena_bytes: u32,
    pub model_crc: u32,
}

impl From<ModelInfo<'_>> for Info {
    fn from(info: ModelInfo<'_>) -> Info {
        Info {
            protocol: info.protocol,
            name: info.name.to_string(),
            input: info.input,
            classes: info.classes,
            arena_bytes: info.arena_bytes,
            model_crc: info.model_crc,
        }
    }
}

impl Link {
    /// A link that reads responses from `reader` and writes requests to `writer`.
    pub fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static, name: String) -> Link {
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || split_frames(reader, &tx));
        Link { writer: Box::new(writer), frames, name }
    }

    /// Sends `request` as one frame.
    pub fn send(&mut self, request: &Request<'_>) -> anyhow::Result<()> {
        let pixels = match request {
            Request::Classify { pixels } => pixels.len(),
            Request::Info => 0,
        };
        // The postcard payload is the pixels plus a variant tag and a length varint.
        let mut buf = vec![0u8; wire::max_frame_len(pixels + 16)];
        let frame = wire::encode(request, &mut buf).map_err(|e| anyhow::anyhow!("encoding a request: {e}"))?;
        self.writer
            .write_all(frame)
            .and_then(|()| self.writer.flush())
            .with_context(|| format!("writing to {}", self.name))
    }

    /// The next response frame's body (delimiter excluded), or `None` if none arrives
    /// within `timeout`. A closed or failing stream is an error.
    pub fn recv(&mut self, timeout: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        match self.frames.recv_timeout(timeout) {
            Ok(Ok(frame)) => Ok(Some(frame)),
            Ok(Err(e)) => Err(e).with_context(|| format!("reading from {}", self.name)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => bail!("{} closed the link", self.name),
        }
    }

    /// Waits, for at most `limit`, until the device answers, and returns its `Info`.
    ///
    /// Bytes sent before a device enables its UART are lost, and a board may hold half a
    /// frame from an earlier session, so this sends a delimiter (which ends any such
    /// frame) and `Info` until something answers, waits for the line to go quiet (the
    /// answers to the earlier tries), then asks once more and takes that answer.
    pub fn handshake(&mut self, limit: Duration) -> anyhow::Result<Info> {
        let start = Instant::now();
        loop {
            if start.elapsed() > limit {
                bail!("{} did not answer Info within {limit:?} (is the `serve` firmware running?)", self.name);
            }
            self.writer.write_all(&[wire::DELIMITER]).with_context(|| format!("writing to {}", self.name))?;
            self.send(&Request::Info)?;
            if self.recv(Duration::from_millis(200))?.is_some() {
                break;
            }
        }
        while self.recv(Duration::from_millis(300))?.is_some() {}
        self.send(&Request::Info)?;
        let Some(mut frame) = self.recv(Duration::from_secs(10))? else {
            bail!("{} answered Info once, then stopped answering", self.name);
        };
        match wire::decode::<Response<'_>>(&mut frame) {
            Ok(Response::Info(info)) => Ok(info.into()),
            Ok(other) => bail!("{} answered Info with {other:?}", self.name),
            Err(e) => bail!("{}'s answer to Info does not decode: {e}", self.name),
        }
    }
}

/// Reads `reader` until it ends, sending each non-empty frame body to `tx`.
fn split_frames(mut reader: impl Read, tx: &mpsc::Sender<std::io::Result<Vec<u8>>>) {
    let mut frame = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for &byte in &buf[..n] {
            if byte != wire::DELIMITER {
                frame.push(byte);
                if frame.len() > MAX_FRAME {
                    let _ = tx.send(Err(std::io::Error::other(format!("no frame delimiter in {MAX_FRAME} bytes"))));
                    return;
                }
            } else if !frame.is_empty() && tx.send(Ok(std::mem::take(&mut frame))).is_err() {
                return;
            }
        }
    }
}
