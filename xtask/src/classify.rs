//! `cargo xtask classify --board B (--port PATH | --qemu) --images IDX|IMAGE|DIR
//! [--labels IDX] [--resize MODE] [--count N] [--model F] [--baud R]`: classifies images on a device running the `serve`
//! firmware and compares every answer with the host's `shared::run` on the same blob and
//! pixels, class and logits, bit for bit.
//!
//! `--qemu` builds the `serve` firmware for an emulated board with the model (the
//! firmware's default blob unless `--model` names one) and talks to QEMU's UART on a
//! loopback socket; `--port` talks to a board already flashed with `cargo xtask flash
//! --mode serve` through its serial device (see [`crate::serial`]). Either way the
//! device's `Info` must name the same model (its blob's CRC-32) before any image is sent.
//!
//! Images come from an IDX file of `u8`, `[N, H, W]` or `[N, H, W, C]`, raw or gzip,
//! whose image shape must be the model's input; or from pictures: an image file, or a
//! folder whose image files (at any depth) are converted to the model's input exactly as
//! `fitnets` converts them (`fitnets-images`, `--resize` as `fitnets predict`). In a
//! folder whose subfolders are named after the model's labels (an image folder data
//! set, or its `test/`), each picture's label is its subfolder's. It prints the mismatch count and the
//! first mismatches in detail, accuracy on the device and on the host when labels are
//! given, and images per second over the link; any mismatch or protocol error fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fitnets_images::{Conversion, Resize};
use fitnets_shared::wire::{self, Request, Response};
use fitnets_shared::{Model, Shape, plan};

use crate::boards::{self, Board, Transport};
use crate::firmware::{self, Mode};
use crate::link::{Info, Link};
use crate::qemu::{self, Serial};
use crate::serial;
use crate::tools::FASHION_MNIST;
use fitnets_images::idx;
use fitnets_tests::SplitMix;

/// What to classify, where.
#[derive(Clone, Debug)]
pub struct Config {
    pub board: Board,
    pub device: Device,
    pub images: PathBuf,
    pub labels: Option<PathBuf>,
    /// The first this many images (all when `None`).
    pub count: Option<usize>,
    /// The model (the firmware's default when `None`).
    pub model: Option<PathBuf>,
    /// How pictures are fitted to the model's input (`stretch` when `None`).
    pub resize: Option<Resize>,
}

/// Where the `serve` firmware runs.
#[derive(Clone, Debug)]
pub enum Device {
    /// Under QEMU, built here.
    Qemu,
    /// On a board behind a serial device, at a baud rate.
    Port { path: PathBuf, baud: u32 },
}

/// The baud rate every board's `serve` firmware uses.
const DEFAULT_BAUD: u32 = 115_200;
/// Pictures in the test's second classify check.
const TEST_PICTURES: usize = 24;

/// Mismatches and protocol errors shown in detail.
const SHOWN: usize = 5;
/// Requests in flight under QEMU, which takes UART bytes only as fast as the firmware
/// reads them, so queued requests cannot overrun it: the next one is there when the
/// device is done. A board's UART has no flow control, so it gets one at a time.
const QEMU_WINDOW: usize = 8;
/// Far above the time one image takes; only a device that stopped answering reaches it.
const RESPONSE_LIMIT: Duration = Duration::from_secs(60);

/// Arguments of `cargo xtask classify`.
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// The board the serve firmware runs on.
    #[arg(long)]
    pub board: String,
    /// Run the board under QEMU.
    #[arg(long)]
    pub qemu: bool,
    /// A flashed board's serial device.
    #[arg(long, value_name = "PATH")]
    pub port: Option<PathBuf>,
    /// The serial device's baud rate (with --port).
    #[arg(long)]
    pub baud: Option<u32>,
    /// IDX images, a picture, or a folder of pictures (subfolders named after labels).
    #[arg(long, value_name = "IDX|IMAGE|DIR")]
    pub images: PathBuf,
    /// IDX labels of the IDX images.
    #[arg(long, value_name = "IDX")]
    pub labels: Option<PathBuf>,
    /// How pictures are fitted to the model's input: stretch, fill or fit.
    #[arg(long)]
    pub resize: Option<String>,
    /// Classify only the first N images.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// The model blob to embed (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

/// The subcommand.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<()> {
    let board = boards::find(&args.board)?;
    let (port, qemu, baud) = (args.port.clone(), args.qemu, args.baud);
    let device = match (port, qemu) {
        (Some(path), false) => Device::Port { path, baud: baud.unwrap_or(DEFAULT_BAUD) },
        (None, true) if baud.is_some() => bail!("--baud sets a serial device's rate; it goes with --port"),
        (None, true) => Device::Qemu,
        _ => bail!("`cargo xtask classify` needs exactly one of --port PATH (a board) and --qemu"),
    };
    let resize = args.resize.as_deref().map(|r| r.parse::<Resize>().map_err(anyhow::Error::msg)).transpose()?;
    let config = Config {
        board,
        device,
        images: args.images.clone(),
        labels: args.labels.clone(),
        count: args.count,
        model: args.model.clone(),
        resize,
    };
    classify(&config)?.verdict()
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Images sent.
    pub images: usize,
    /// Predictions compared with the host's (one per image unless protocol errors).
    pub compared: usize,
    pub mismatches: usize,
    pub protocol_errors: usize,
    /// The first few mismatches and the first few protocol errors, in image order.
    details: Vec<String>,
    /// Images whose label the device's and the host's class equal, when labels were given.
    correct: Option<(usize, usize)>,
    elapsed: Duration,
}

impl Outcome {
    /// Fails on any mismatch or protocol error.
    pub fn verdict(&self) -> anyhow::Result<()> {
        if self.mismatches + self.protocol_errors > 0 {
            bail!(
                "{} of {} predictions differ between device and host; {} protocol errors",
                self.mismatches,
                self.compared,
                self.protocol_errors
            );
        }
        Ok(())
    }

    /// What was compared and found, one fact a line.
    /// `(correct, images)` on the device, when labels were given.
    pub fn device_correct(&self) -> Option<(usize, usize)> {
        self.correct.map(|(device, _)| (device, self.images))
    }

    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "compared {} of {} images with the host: {} mismatches, {} protocol errors",
            self.compared, self.images, self.mismatches, self.protocol_errors
        )];
        lines.extend(self.details.iter().map(|detail| format!("  {detail}")));
        if let Some((device, host)) = self.correct {
            let percent = |n: usize| 100.0 * n as f64 / self.images.max(1) as f64;
            lines.push(format!("accuracy (device) {:.2}%, accuracy (host) {:.2}%", percent(device), percent(host)));
        }
        let rate = self.images as f64 / self.elapsed.as_secs_f64().max(1e-9);
        lines.push(format!("{} images in {:.1?} over the link: {rate:.1} images/s", self.images, self.elapsed));
        lines.join("\n")
    }
}

/// Loads the model and images, starts or opens the device, classifies, prints the
/// outcome and returns it.
pub fn classify(config: &Config) -> anyhow::Result<Outcome> {
    let path = config.model.clone().unwrap_or_else(firmware::default_model);
    let blob = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let images = Images::load(config, &model, &path)?;
    eprintln!(
        "classify on {}: {} images of {} from {}, model `{}` ({}, CRC-32 {:#010x})",
        config.board.name,
        images.count,
        shape(model.input_shape()),
        config.images.display(),
        model.name(),
        path.display(),
        model.crc()
    );
    let outcome = match &config.device {
        Device::Qemu => {
            config.board.qemu()?;
            let build = firmware::build(config.board, Transport::Qemu, config.model.as_deref(), &[Mode::Serve])?;
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").context("binding a loopback port for the UART")?;
            let running = qemu::start(config.board, &build.elf(Mode::Serve), &Serial::Connect(listener.local_addr()?))?;
            let result = (|| {
                let stream = qemu::accept(&listener, Duration::from_secs(30))?;
                let mut link = Link::new(stream.try_clone()?, stream, format!("{} under QEMU", config.board.name));
                compare(&mut link, &model, &path, &images, QEMU_WINDOW, None)
            })();
            running.stop();
            result?
        }
        Device::Port { path: port, baud } => {
            let (reader, writer) = serial::open(port, *baud)?;
            let mut link = Link::new(reader, writer, port.display().to_string());
            compare(&mut link, &model, &path, &images, 1, Some(config.board))?
        }
    };
    eprintln!("{}", outcome.summary());
    Ok(outcome)
}

/// Images to send, with their labels.
struct Images {
    pixels: Vec<u8>,
    /// Bytes per image.
    len: usize,
    count: usize,
    labels: Option<Vec<u8>>,
}

impl Images {
    fn load(config: &Config, model: &Model<'_>, model_path: &Path) -> anyhow::Result<Images> {
        if !idx::looks_like_idx(&config.images) {
            return Images::pictures(config, model);
        }
        if config.resize.is_some() {
            bail!("--resize fits pictures to the model; {} is an IDX file", config.images.display());
        }
        let file = idx::read(&config.images)?;
        let shown = config.images.display();
        let (n, found) = match file.dims[..] {
            [n, h, w] => (n, [h, w, 1]),
            [n, h, w, c] => (n, [h, w, c]),
            _ => bail!("{shown}: images must have dims [N, H, W] or [N, H, W, C], found {:?}", file.dims),
        };
        let input = model.input_shape();
        let wanted = [input.height, input.width, input.channels].map(usize::from);
        if found != wanted {
            bail!(
                "{shown} holds images of {}x{}x{}, but the model `{}` ({}) takes {}",
                found[0],
                found[1],
                found[2],
                model.name(),
                model_path.display(),
                shape(input)
            );
        }
        let count = config.count.unwrap_or(n);
        if count == 0 || count > n {
            bail!("--count {count}: {shown} holds {n} images");
        }
        let labels = match &config.labels {
            None => None,
            Some(path) => {
                let file = idx::read(path)?;
                if file.dims != [n] {
                    bail!("{}: labels must have dims [{n}] for {shown}, found {:?}", path.display(), file.dims);
                }
                Some(file.data[..count].to_vec())
            }
        };
        let len = input.len();
        let mut pixels = file.data;
        pixels.truncate(count * len);
        Ok(Images { pixels, len, count, labels })
    }

    /// Pictures: an image file or a folder of them, converted to the model's input,
    /// labelled by their subfolder when every one sits in a folder named after a label.
    fn pictures(config: &Config, model: &Model<'_>) -> anyhow::Result<Images> {
        if config.labels.is_some() {
            bail!("--labels goes with IDX images; pictures are labelled by the folders they are in");
        }
        let files = fitnets_images::image_files(std::slice::from_ref(&config.images), 1_000_000)?;
        let count = config.count.unwrap_or(files.len());
        if count == 0 || count > files.len() {
            bail!("--count {count}: {} holds {} pictures", config.images.display(), files.len());
        }
        let files = &files[..count];
        let input = model.input_shape();
        let dims = [input.height, input.width, input.channels].map(usize::from);
        let conversion = Conversion::new(dims, config.resize.unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("the model `{}`: {e}", model.name()))?;
        let mut pixels = Vec::with_capacity(count * input.len());
        for file in files {
            pixels.extend(fitnets_images::convert_file(file, &conversion)?);
        }
        let labels: Vec<&str> = model.labels().collect();
        let label_of = |file: &Path| {
            let folder = file.parent()?.file_name()?.to_str()?;
            labels.iter().position(|l| *l == folder).and_then(|l| u8::try_from(l).ok())
        };
        let labels: Option<Vec<u8>> = files.iter().map(|f| label_of(f)).collect();
        eprintln!(
            "{}: {count} pictures as {conversion}{}",
            config.images.display(),
            if labels.is_some() { ", labelled by their folders" } else { "" }
        );
        Ok(Images { pixels, len: input.len(), count, labels })
    }

    fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * self.len..(index + 1) * self.len]
    }
}

/// Checks the device's model, then sends every image, keeping up to `window` requests
/// in flight, and compares each response with the host's result.
fn compare(
    link: &mut Link,
    model: &Model<'_>,
    path: &Path,
    images: &Images,
    window: usize,
    board: Option<Board>,
) -> anyhow::Result<Outcome> {
    let info = link.handshake(Duration::from_secs(60))?;
    check_info(&info, model, path, &link.name, board)?;
    let mut arena = vec![0u8; plan::arena_bytes(model) as usize];
    let mut outcome = Outcome { correct: images.labels.as_ref().map(|_| (0, 0)), ..Outcome::default() };
    let start = Instant::now();
    let mut shown_at = start;
    let mut sent = 0;
    for index in 0..images.count {
        while sent < images.count && sent < index + window {
            link.send(&Request::Classify { pixels: images.image(sent) })?;
            sent += 1;
        }
        let Some(mut frame) = link.recv(RESPONSE_LIMIT)? else {
            bail!("no response to image {index} within {RESPONSE_LIMIT:?} ({} compared)", outcome.compared);
        };
        let host = fitnets_shared::run(model, images.image(index), &mut arena)?;
        let host_logits: Vec<i8> = host.logits.to_vec();
        outcome.images += 1;
        let label = images.labels.as_ref().map(|labels| labels[index]);
        // Only the first few of each kind are described.
        let problem = match wire::decode::<Response<'_>>(&mut frame) {
            Ok(Response::Prediction { class, logits }) => {
                if let (Some((device, host_right)), Some(label)) = (outcome.correct.as_mut(), label) {
                    *device += usize::from(class == u16::from(label));
                    *host_right += usize::from(host.class == u16::from(label));
                }
                outcome.compared += 1;
                let logits: Vec<i8> = logits.iter().map(|&b| b as i8).collect();
                if class == host.class && logits == host_logits {
                    None
                } else {
                    outcome.mismatches += 1;
                    (outcome.mismatches <= SHOWN).then(|| {
                        format!(
                            "device class {class}, logits {logits:?}; host class {}, logits {host_logits:?}",
                            host.class
                        )
                    })
                }
            }
            Ok(other) => {
                outcome.protocol_errors += 1;
                (outcome.protocol_errors <= SHOWN).then(|| format!("protocol error: answered {other:?}"))
            }
            Err(e) => {
                outcome.protocol_errors += 1;
                (outcome.protocol_errors <= SHOWN)
                    .then(|| format!("protocol error: the response does not decode ({e})"))
            }
        };
        if let Some(problem) = problem {
            let label = label.map(|l| format!(" (label {l})")).unwrap_or_default();
            outcome.details.push(format!("image {index}{label}: {problem}"));
        }
        if shown_at.elapsed() > Duration::from_secs(10) {
            shown_at = Instant::now();
            eprintln!("  {} of {} images, {} mismatches", outcome.images, images.count, outcome.mismatches);
        }
    }
    outcome.elapsed = start.elapsed();
    Ok(outcome)
}

/// Fails unless the device runs exactly `model`.
fn check_info(info: &Info, model: &Model<'_>, path: &Path, link: &str, board: Option<Board>) -> anyhow::Result<()> {
    if info.protocol != wire::PROTOCOL_VERSION {
        bail!("{link} speaks protocol {}, this xtask {}", info.protocol, wire::PROTOCOL_VERSION);
    }
    if info.model_crc != model.crc() || info.input != model.input_shape() || info.classes != model.classes() {
        let flash = board.map_or_else(String::new, |b| {
            format!("; flash it with `cargo xtask flash --board {} --mode serve --model {}`", b.name, path.display())
        });
        bail!(
            "{link} runs the model `{}` (CRC-32 {:#010x}, input {}, {} classes), not `{}` from {} (CRC-32 {:#010x}){flash}",
            info.name,
            info.model_crc,
            shape(info.input),
            info.classes,
            model.name(),
            path.display(),
            model.crc()
        );
    }
    eprintln!("{link} runs `{}` (arena {} bytes)", info.name, info.arena_bytes);
    Ok(())
}

/// `HxWxC`.
fn shape(s: Shape) -> String {
    format!("{}x{}x{}", s.height, s.width, s.channels)
}

/// `cargo xtask test`'s check: the first `count` Fashion-MNIST test images if the
/// firmware's default model takes 28x28x1 images and the data set is installed, else
/// `count` seeded random images of the model's input shape (written to a temporary IDX
/// file), classified on `board` under QEMU. Agreement with the host is what it checks;
/// on random images accuracy means nothing.
pub fn test_check(board: Board, count: usize) -> anyhow::Result<()> {
    let path = firmware::default_model();
    let blob = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let input = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.input_shape();
    let mut config = Config {
        board,
        device: Device::Qemu,
        images: Path::new(FASHION_MNIST).join("t10k-images-idx3-ubyte.gz"),
        labels: None,
        count: Some(count),
        model: None,
        resize: None,
    };
    if input == Shape::new(28, 28, 1) && config.images.is_file() {
        config.labels = Some(Path::new(FASHION_MNIST).join("t10k-labels-idx1-ubyte.gz"));
        classify(&config)?.verdict()?;
        return pictures_check(board, &config.images, config.labels.as_deref().expect("set above"));
    }
    let dir = std::env::temp_dir().join(format!("fitnets-classify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    config.images = dir.join("random-images-idx-ubyte");
    let dims = [count, usize::from(input.height), usize::from(input.width), usize::from(input.channels)];
    let dims = if input.channels == 1 { &dims[..3] } else { &dims[..] };
    let result = idx::write(&config.images, dims, &SplitMix(1).bytes(count * input.len()))
        .and_then(|()| classify(&config))
        .and_then(|outcome| outcome.verdict());
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The test's pictures check: [`TEST_PICTURES`] Fashion-MNIST test images written as
/// pictures of every format at other sizes and in colour, in folders named after their
/// labels, classified on the device through the same conversion as `fitnets`.
fn pictures_check(board: Board, images: &Path, labels: &Path) -> anyhow::Result<()> {
    use image::{DynamicImage, GrayImage, ImageFormat, imageops::FilterType};
    let (images, labels) = (idx::read(images)?, idx::read(labels)?);
    let path = firmware::default_model();
    let blob = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let names: Vec<&str> = model.labels().collect();
    let dir = std::env::temp_dir().join(format!("fitnets-pictures-{}", std::process::id()));
    let formats = [
        ("png", ImageFormat::Png, 28),
        ("jpg", ImageFormat::Jpeg, 56),
        ("bmp", ImageFormat::Bmp, 40),
        ("pgm", ImageFormat::Pnm, 28),
        ("tif", ImageFormat::Tiff, 84),
        ("gif", ImageFormat::Gif, 31),
    ];
    let write = || -> anyhow::Result<()> {
        // Labels whose names cannot be folder names (`T-shirt/top`) are left out.
        let usable = (0..labels.data.len()).filter(|&i| !names[usize::from(labels.data[i])].contains('/'));
        for (n, i) in usable.take(TEST_PICTURES).enumerate() {
            let (ext, format, side) = formats[n % formats.len()];
            let pixels = images.data[i * 784..(i + 1) * 784].to_vec();
            let gray = DynamicImage::from(GrayImage::from_raw(28, 28, pixels).expect("28x28"));
            let picture = gray.resize_exact(side, side, FilterType::Triangle);
            let picture = match ext {
                "gif" => DynamicImage::from(picture.to_rgba8()),
                "jpg" | "tif" => DynamicImage::from(picture.to_rgb8()),
                _ => picture,
            };
            let folder = dir.join(names[usize::from(labels.data[i])]);
            std::fs::create_dir_all(&folder)?;
            picture.save_with_format(folder.join(format!("{i:05}.{ext}")), format)?;
        }
        Ok(())
    };
    let config = Config {
        board,
        device: Device::Qemu,
        images: dir.clone(),
        labels: None,
        count: None,
        model: None,
        resize: None,
    };
    let result = write().and_then(|()| classify(&config)).and_then(|outcome| {
        anyhow::ensure!(outcome.device_correct().is_some(), "the pictures were not labelled by their folders");
        outcome.verdict()
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
