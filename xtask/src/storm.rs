//! `cargo xtask storm [--board B] [--frames N] [--images N] [--model F] [--seed S]`: the
//! serve check. Runs the `serve` firmware under QEMU with its UART on a loopback socket,
//! sends a storm of malformed frames (random, truncated, oversized, wrong checksum, bad
//! message, wrong image size) with stray delimiters between them, then asks for `Info` and
//! classifies images. Every response is checked in order: each malformed frame must get
//! the error it deserves, `Info` must describe the model, and every prediction must equal
//! the host's `shared::run` result bit for bit.
//!
//! The frames are built here with their own COBS encoder, independent of
//! `shared::wire`'s, so the check does not trust the code it checks.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fitnets_shared::format::CRC32;
use fitnets_shared::wire::{self, ErrorCode, Request, Response};
use fitnets_shared::{Model, plan};

use crate::boards::{self, Board, Transport};
use crate::firmware::{self, Mode};
use crate::qemu::{self, Serial};
use fitnets_tests::SplitMix;

/// What to send.
#[derive(Clone, Debug)]
pub struct Config {
    pub board: Board,
    /// Malformed frames in the storm.
    pub frames: usize,
    /// Images classified after it.
    pub images: usize,
    /// The model (the firmware's default when `None`).
    pub model: Option<PathBuf>,
    /// Seeds every random choice, so a failure can be replayed.
    pub seed: u64,
}

/// The full storm of the issue; `cargo xtask test` sends fewer.
pub const FULL_STORM: usize = 10_000;

/// Arguments of `cargo xtask storm`.
#[derive(clap::Args, Debug)]
pub struct StormArgs {
    /// The board: an emulated one, or stm32f4 under QEMU.
    #[arg(long, default_value = "qemu-m4")]
    pub board: String,
    /// Malformed frames sent.
    #[arg(long, default_value_t = FULL_STORM, value_name = "N")]
    pub frames: usize,
    /// Images classified afterwards, each compared with the host bit for bit.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub images: usize,
    /// The model blob to embed (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// The seed of the storm's frames.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The subcommand.
pub fn run(args: &StormArgs) -> anyhow::Result<()> {
    let board = boards::find(&args.board)?;
    let config = Config { board, frames: args.frames, images: args.images, model: args.model.clone(), seed: args.seed };
    check(&config)
}

/// What one response must be.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Error(ErrorCode),
    Info { name: String, input: fitnets_shared::Shape, classes: u16, arena_bytes: u32, model_crc: u32 },
    Prediction { class: u16, logits: Vec<u8> },
}

/// The kinds of malformed frame, each with what the device must answer.
const KINDS: [&str; 6] = ["random", "truncated", "oversized", "checksum", "message", "image size"];

/// Runs the check; fails on the first wrong, missing or extra response.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let path = config.model.clone().unwrap_or_else(firmware::default_model);
    let blob = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut plan = Storm::new(&model, config.seed);
    let mut counts = [0usize; KINDS.len()];
    for _ in 0..config.frames {
        counts[plan.malformed()] += 1;
    }
    let storm_responses = plan.expected.len();
    plan.info(&model);
    for index in 0..config.images {
        plan.classify(&model, index)?;
    }

    let build = firmware::build(config.board, Transport::Qemu, config.model.as_deref(), &[Mode::Serve])?;
    let (responses, elapsed) = drive(config.board, &build.elf(Mode::Serve), &plan)?;
    let summary: Vec<String> = KINDS.iter().zip(counts).map(|(kind, n)| format!("{n} {kind}")).collect();
    eprintln!(
        "storm on {}: {} malformed frames ({}) and {} stray delimiters, {} bytes; \
         all {storm_responses} error responses as expected",
        config.board.name,
        config.frames,
        summary.join(", "),
        plan.stray,
        plan.bytes.len(),
    );
    eprintln!(
        "after the storm: Info as expected; {} images classified, 0 mismatches with the host ({responses} responses \
         in {elapsed:.1?})",
        config.images
    );
    Ok(())
}

/// Starts the firmware, sends the whole plan and checks every response in order.
fn drive(board: Board, elf: &Path, plan: &Storm) -> anyhow::Result<(usize, Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port for the UART")?;
    let running = qemu::start(board, elf, &Serial::Connect(listener.local_addr()?))?;
    let result = (|| {
        let stream = qemu::accept(&listener, Duration::from_secs(30))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        handshake(&mut reader, &mut stream.try_clone()?)?;
        let start = Instant::now();
        let mut writer = stream.try_clone()?;
        let bytes = plan.bytes.clone();
        // Send on a thread while this one reads: the device blocks when its responses are
        // not read, and QEMU stops taking bytes while the device is busy.
        let sender = std::thread::spawn(move || writer.write_all(&bytes));
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut frame = Vec::new();
        for (index, expected) in plan.expected.iter().enumerate() {
            frame.clear();
            reader.read_until(wire::DELIMITER, &mut frame).with_context(|| {
                format!("no response {index} of {} (the device stopped answering)", plan.expected.len())
            })?;
            if frame.pop() != Some(wire::DELIMITER) {
                bail!("the device closed the UART after {index} of {} responses", plan.expected.len());
            }
            let got = wire::decode::<Response<'_>>(&mut frame)
                .map_err(|e| anyhow::anyhow!("response {index} does not decode: {e}"))?;
            let got = Expect::from(got);
            if &got != expected {
                bail!("response {index}: expected {expected:?}, got {got:?}");
            }
        }
        let elapsed = start.elapsed();
        sender.join().map_err(|_| anyhow::anyhow!("the sender panicked"))?.context("sending to the UART")?;
        Ok((plan.expected.len(), elapsed))
    })();
    running.stop();
    result
}

/// Waits until the device answers. Bytes sent before its UART is enabled are lost (QEMU's
/// STM32 USART drops them, as a real one would), so it sends a delimiter and `Info` until
/// an answer comes, then waits for the line to go quiet, dropping the answers to the
/// earlier tries.
fn handshake(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> anyhow::Result<()> {
    let mut hello = vec![wire::DELIMITER];
    hello.extend(cobs(&with_crc(&payload(&Request::Info))));
    hello.push(wire::DELIMITER);
    let start = Instant::now();
    reader.get_ref().set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut frame = Vec::new();
    loop {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the device did not answer Info within a minute");
        }
        writer.write_all(&hello)?;
        // A timed-out read keeps what it got in `frame`; the next try goes on from there.
        match reader.read_until(wire::DELIMITER, &mut frame) {
            Ok(0) => bail!("the device closed the UART"),
            Ok(_) if frame.last() == Some(&wire::DELIMITER) => break,
            Ok(_) => bail!("the device closed the UART"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("reading from the UART"),
        }
    }
    loop {
        frame.clear();
        match reader.read_until(wire::DELIMITER, &mut frame) {
            Ok(n) if n > 0 => continue,
            Ok(_) => bail!("the device closed the UART"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if frame.is_empty() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).context("reading from the UART"),
        }
    }
}

impl From<Response<'_>> for Expect {
    fn from(response: Response<'_>) -> Expect {
        match response {
            Response::Error(code) => Expect::Error(code),
            Response::Info(info) => Expect::Info {
                name: info.name.to_string(),
                input: info.input,
                classes: info.classes,
                arena_bytes: info.arena_bytes,
                model_crc: info.model_crc,
            },
            Response::Prediction { class, logits } => Expect::Prediction { class, logits: logits.to_vec() },
        }
    }
}

/// The bytes to send and the responses they must get.
struct Storm {
    rng: SplitMix,
    /// Raw pixels per image.
    input: usize,
    /// The longest frame body the device accepts: that of a Classify of the right size.
    limit: usize,
    bytes: Vec<u8>,
    expected: Vec<Expect>,
    stray: usize,
}

impl Storm {
    fn new(model: &Model<'_>, seed: u64) -> Storm {
        let input = model.input_shape().len();
        let limit = wire::max_frame_len(payload(&Request::Classify { pixels: &vec![0; input] }).len()) - 1;
        Storm { rng: SplitMix(seed), input, limit, bytes: Vec::new(), expected: Vec::new(), stray: 0 }
    }

    /// Queues one frame body, its delimiter and what it must get.
    fn push(&mut self, body: &[u8], expected: Expect) {
        debug_assert!(!body.is_empty() && !body.contains(&0));
        self.bytes.extend_from_slice(body);
        self.bytes.push(wire::DELIMITER);
        self.expected.push(expected);
        // Now and then an empty frame, which must get no response at all.
        if self.rng.below(16) == 0 {
            self.bytes.push(wire::DELIMITER);
            self.stray += 1;
        }
    }

    /// Queues one malformed frame of a random kind; returns the kind's index in [`KINDS`].
    fn malformed(&mut self) -> usize {
        let kind = self.rng.below(KINDS.len());
        let bad = Expect::Error(ErrorCode::BadFrame);
        let too_long = Expect::Error(ErrorCode::TooLong);
        match kind {
            // Random non-zero bytes, mostly short, sometimes past the device's buffer.
            0 => {
                let max = if self.rng.below(8) == 0 { self.limit + 64 } else { 64 };
                let len = 1 + self.rng.below(max);
                let body = self.rng.nonzero(len);
                let expected = if body.len() > self.limit { too_long } else { bad };
                self.push(&body, expected);
            }
            // A valid frame cut short.
            1 => {
                let body = self.valid_body();
                let cut = 1 + self.rng.below(body.len() - 1);
                self.push(&body[..cut], bad);
            }
            // Longer than any valid request: noise, or a Classify with too many pixels.
            2 => {
                let body = if self.rng.below(2) == 0 {
                    let len = self.limit + 1 + self.rng.below(256);
                    self.rng.nonzero(len)
                } else {
                    let pixels = self.rng.bytes(self.input + 300);
                    cobs(&with_crc(&payload(&Request::Classify { pixels: &pixels })))
                };
                self.push(&body, too_long);
            }
            // A valid message with one bit of its checksum flipped.
            3 => {
                let message = self.valid_payload();
                let mut raw = with_crc(&message);
                let bit = self.rng.below(32);
                let at = raw.len() - 4 + bit / 8;
                raw[at] ^= 1 << (bit % 8);
                self.push(&cobs(&raw), bad);
            }
            // A correct checksum around something that is not a request.
            4 => {
                let message = match self.rng.below(3) {
                    0 => vec![2 + self.rng.below(250) as u8],       // no such variant
                    1 => vec![0, self.rng.below(256) as u8],        // Info with bytes left over
                    _ => vec![1, 0x80 | self.rng.below(128) as u8], // a length cut short
                };
                self.push(&cobs(&with_crc(&message)), bad);
            }
            // A well-formed Classify whose image has the wrong size.
            _ => {
                let len = self.rng.below(self.input);
                let pixels = self.rng.bytes(len);
                let body = cobs(&with_crc(&payload(&Request::Classify { pixels: &pixels })));
                self.push(&body, Expect::Error(ErrorCode::InputLength));
            }
        }
        kind
    }

    /// A valid request's payload: Info or Classify.
    fn valid_payload(&mut self) -> Vec<u8> {
        if self.rng.below(4) == 0 {
            payload(&Request::Info)
        } else {
            let pixels = self.rng.bytes(self.input);
            payload(&Request::Classify { pixels: &pixels })
        }
    }

    fn valid_body(&mut self) -> Vec<u8> {
        let message = self.valid_payload();
        cobs(&with_crc(&message))
    }

    fn info(&mut self, model: &Model<'_>) {
        let expected = Expect::Info {
            name: model.name().to_string(),
            input: model.input_shape(),
            classes: model.classes(),
            arena_bytes: plan::arena_bytes(model),
            model_crc: model.crc(),
        };
        self.push(&cobs(&with_crc(&payload(&Request::Info))), expected);
    }

    /// Queues image `index` (all black, all white, then noise) with the host's result.
    fn classify(&mut self, model: &Model<'_>, index: usize) -> anyhow::Result<()> {
        let pixels = match index {
            0 => vec![0; self.input],
            1 => vec![u8::MAX; self.input],
            _ => self.rng.bytes(self.input),
        };
        let mut arena = vec![0u8; plan::arena_bytes(model) as usize];
        let prediction = fitnets_shared::run(model, &pixels, &mut arena)?;
        let logits = prediction.logits.iter().map(|&l| l as u8).collect();
        let expected = Expect::Prediction { class: prediction.class, logits };
        self.push(&cobs(&with_crc(&payload(&Request::Classify { pixels: &pixels }))), expected);
        Ok(())
    }
}

/// `message` in postcard.
fn payload(message: &Request<'_>) -> Vec<u8> {
    let mut buf = vec![
        0u8;
        64 + match message {
            Request::Classify { pixels } => pixels.len(),
            Request::Info => 0,
        }
    ];
    let len = postcard::to_slice(message, &mut buf).expect("the buffer has room").len();
    buf.truncate(len);
    buf
}

/// `payload` followed by its CRC-32, little-endian: a frame before COBS.
fn with_crc(payload: &[u8]) -> Vec<u8> {
    let mut raw = payload.to_vec();
    raw.extend_from_slice(&CRC32.checksum(payload).to_le_bytes());
    raw
}

/// COBS: every zero becomes the distance to the next one; blocks of 254 non-zero bytes
/// end with a 0xFF code. The result has no zero byte.
fn cobs(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    let mut code_at = 0;
    for &byte in raw {
        if byte != 0 {
            out.push(byte);
        }
        if byte == 0 || out.len() - code_at == 0xFF {
            out[code_at] = (out.len() - code_at) as u8;
            code_at = out.len();
            out.push(0);
        }
    }
    out[code_at] = (out.len() - code_at) as u8;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The storm's COBS must agree with the firmware's decoder on valid frames, or every
    /// "malformed" frame would be malformed for the wrong reason.
    #[test]
    fn cobs_frames_decode_with_shared() {
        let mut rng = SplitMix(7);
        for len in [0, 1, 5, 253, 254, 255, 600] {
            let pixels = rng.bytes(len);
            let mut body = cobs(&with_crc(&payload(&Request::Classify { pixels: &pixels })));
            assert!(!body.contains(&0));
            assert_eq!(wire::decode::<Request<'_>>(&mut body), Ok(Request::Classify { pixels: &pixels }));
        }
    }

    #[test]
    fn cobs_matches_shared_encoder() {
        let mut rng = SplitMix(3);
        for len in [0, 10, 254, 300, 1000] {
            let pixels = rng.bytes(len);
            let request = Request::Classify { pixels: &pixels };
            let mut buf = vec![0u8; wire::max_frame_len(len + 8)];
            let frame = wire::encode(&request, &mut buf).unwrap();
            assert_eq!(&frame[..frame.len() - 1], &cobs(&with_crc(&payload(&request)))[..]);
        }
    }
}
