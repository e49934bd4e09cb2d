//! Build script: picks the board's `memory.x`, embeds the model blob that `FITNETS_MODEL`
//! names, sizes every buffer the firmware needs exactly, and records what the host computes
//! for the self-test images, so the firmware can check that the device computes the same
//! logits bit for bit.
//!
//! It writes `memory.x`, `model.fnet` (the blob) and `model.rs` (sizes and expected
//! results) to `OUT_DIR`; `src/model.rs` includes the latter. A blob that does not
//! validate, or that cannot fit the board's flash or RAM, fails the build here with the
//! numbers, instead of failing on the device.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use fitnets_shared::wire::{self, ErrorCode, ModelInfo, Request, Response};
use fitnets_shared::{Model, plan};

// The very module the firmware uses: host and device generate the same pixels.
#[path = "src/images.rs"]
mod images;

/// The model embedded when `FITNETS_MODEL` is not set (relative to this folder).
const DEFAULT_MODEL: &str = "models/fashion-fitnet.fnet";

/// The boards, by cargo feature. Each has `memory/<feature>.x`.
const BOARDS: [&str; 4] = ["qemu-m4", "qemu-m7", "stm32f4", "nrf52840dk"];

/// Flash the firmware needs besides the blob, at least: code, tables, vector table
/// (`cargo xtask size` measures 32 to 36 KB today, at opt-level "s"). A lower bound, so a model refused here
/// cannot fit; the linker's region check catches what it leaves over.
const CODE_BYTES: u64 = 24 * 1024;

/// RAM kept for the stack. The self-test logs the real peak (1.9 KB with the tiny model,
/// most of it defmt and the test loop, not `shared::run`).
const STACK_BYTES: u64 = 4 * 1024;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = board();
    let memory = Path::new("memory").join(format!("{board}.x"));
    let script = fs::read_to_string(&memory).unwrap_or_else(|e| panic!("cannot read {}: {e}", memory.display()));
    // cortex-m-rt's `link.x` includes `memory.x` from the linker search path.
    fs::write(out.join("memory.x"), &script).expect("cannot write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", memory.display());
    let flash = region_length(&script, "FLASH").unwrap_or_else(|| panic!("{}: no FLASH length", memory.display()));
    let ram = region_length(&script, "RAM").unwrap_or_else(|| panic!("{}: no RAM length", memory.display()));

    // Cargo runs build scripts in the package folder, so a relative path is taken from
    // `firmware/`.
    println!("cargo:rerun-if-env-changed=FITNETS_MODEL");
    let path = env::var_os("FITNETS_MODEL").map_or_else(|| PathBuf::from(DEFAULT_MODEL), PathBuf::from);
    println!("cargo:rerun-if-changed={}", path.display());
    let blob = fs::read(&path).unwrap_or_else(|e| panic!("cannot read the model {}: {e}", path.display()));
    let model =
        Model::from_bytes(&blob).unwrap_or_else(|e| panic!("{} is not a valid fitnets model: {e}", path.display()));
    let sizes = Sizes::of(&model);

    let flash_needed = blob.len() as u64 + CODE_BYTES;
    let ram_needed = sizes.static_ram() + STACK_BYTES;
    if flash_needed > flash || ram_needed > ram {
        panic!(
            "the model {} does not fit the board {board}:\n  \
             flash: {flash_needed} bytes needed ({} blob + {CODE_BYTES} code), {flash} available\n  \
             RAM:   {ram_needed} bytes needed ({} arena + {} frame buffers + {} pixels + {STACK_BYTES} stack), \
             {ram} available",
            path.display(),
            blob.len(),
            sizes.arena,
            sizes.rx_frame + sizes.tx_frame,
            sizes.input,
        );
    }

    fs::write(out.join("model.fnet"), &blob).expect("cannot write model.fnet to OUT_DIR");
    fs::write(out.join("model.rs"), generate(&model, &sizes, board)).expect("cannot write model.rs to OUT_DIR");
}

/// The one board feature that is on; fails the build unless there is exactly one, and
/// unless exactly one log transport is on.
fn board() -> &'static str {
    let on =
        |feature: &str| env::var_os(format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"))).is_some();
    let boards: Vec<&str> = BOARDS.into_iter().filter(|b| on(b)).collect();
    let [board] = boards[..] else {
        panic!(
            "choose exactly one board feature of {BOARDS:?} (found {boards:?}); for any but the default, \
             build with `--no-default-features --features <board>`"
        );
    };
    match (on("qemu"), on("rtt")) {
        (true, false) | (false, true) => board,
        (qemu, rtt) => panic!(
            "choose exactly one log transport for {board}: the feature `qemu` (semihosting, under QEMU) or \
             `rtt` (a real board) (qemu: {qemu}, rtt: {rtt})"
        ),
    }
}

/// The `LENGTH` of a `MEMORY` region in a linker script (`4M`, `128K`, decimal or hex).
fn region_length(script: &str, region: &str) -> Option<u64> {
    let line = script.lines().find(|l| l.trim_start().starts_with(region) && l.contains("LENGTH"))?;
    let value = line.split("LENGTH").nth(1)?.trim_start_matches([' ', '=']).trim().trim_end_matches(',');
    let (digits, scale) = match value.as_bytes().last()? {
        b'K' => (&value[..value.len() - 1], 1024),
        b'M' => (&value[..value.len() - 1], 1024 * 1024),
        _ => (value, 1),
    };
    let number = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(number * scale)
}

/// Every buffer's exact size for one model.
struct Sizes {
    /// `plan::arena_bytes`.
    arena: u64,
    /// Raw pixels per image.
    input: u64,
    /// The longest request frame body the device must accept (a Classify, delimiter
    /// excluded): the `Accumulator`'s buffer.
    rx_frame: u64,
    /// The longest response frame, delimiter included: `wire::encode`'s buffer.
    tx_frame: u64,
}

impl Sizes {
    fn of(model: &Model<'_>) -> Sizes {
        let input = model.input_shape().len();
        let classes = usize::from(model.classes());
        let pixels = vec![u8::MAX; input];
        let logits = vec![u8::MAX; classes];
        let info = ModelInfo {
            protocol: wire::PROTOCOL_VERSION,
            name: model.name(),
            input: model.input_shape(),
            classes: model.classes(),
            arena_bytes: plan::arena_bytes(model),
            model_crc: model.crc(),
        };
        let request = payload_len(&Request::Classify { pixels: &pixels });
        let response = [
            payload_len(&Response::Info(info)),
            payload_len(&Response::Prediction { class: u16::MAX, logits: &logits }),
            payload_len(&Response::Error(ErrorCode::Internal)),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Sizes {
            arena: u64::from(plan::arena_bytes(model)),
            input: input as u64,
            rx_frame: wire::max_frame_len(request) as u64 - 1,
            tx_frame: wire::max_frame_len(response) as u64,
        }
    }

    /// RAM in `.bss` besides the stack: the arena, both frame buffers and one image.
    fn static_ram(&self) -> u64 {
        self.arena + self.rx_frame + self.tx_frame + self.input
    }
}

/// Bytes of `message` in postcard.
fn payload_len<T: serde::Serialize>(message: &T) -> usize {
    let mut buf = vec![0u8; 1 << 20];
    postcard::to_slice(message, &mut buf).expect("a message of a validated model serializes").len()
}

/// The source of `model.rs`: the blob, its sizes and the host's results on the test images.
fn generate(model: &Model<'_>, sizes: &Sizes, board: &str) -> String {
    let mut arena = vec![0u8; sizes.arena as usize];
    let mut pixels = vec![0u8; sizes.input as usize];

    let mut src = String::new();
    let w = &mut src;
    // `write!` to a String cannot fail.
    let _ = writeln!(w, "// Generated by build.rs from the model `{}` (CRC-32 {:#010x}).", model.name(), model.crc());
    let _ = writeln!(w, "\n/// The board this firmware was built for (its cargo feature).");
    let _ = writeln!(w, "pub const BOARD: &str = {board:?};");
    let _ = writeln!(w, "/// The model blob, as `Model::from_bytes` validated it at build time.");
    let _ = writeln!(w, "pub static BLOB: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model.fnet\"));");
    let _ = writeln!(w, "/// Exact activation arena (`plan::arena_bytes`).");
    let _ = writeln!(w, "pub const ARENA_BYTES: usize = {};", sizes.arena);
    let _ = writeln!(w, "/// Raw input pixels per image (`height * width * channels`).");
    let _ = writeln!(w, "pub const INPUT_BYTES: usize = {};", sizes.input);
    let _ = writeln!(w, "/// The longest request frame body (a Classify), delimiter excluded.");
    let _ = writeln!(w, "pub const RX_FRAME_BYTES: usize = {};", sizes.rx_frame);
    let _ = writeln!(w, "/// The longest response frame, delimiter included.");
    let _ = writeln!(w, "pub const TX_FRAME_BYTES: usize = {};", sizes.tx_frame);
    let _ = writeln!(w, "/// What the host computed for each of `images::COUNT` test images.");
    let _ = writeln!(w, "pub const EXPECTED: [Expected; crate::images::COUNT] = [");
    for index in 0..images::COUNT as u32 {
        images::fill(index, &mut pixels);
        let prediction = fitnets_shared::run(model, &pixels, &mut arena)
            .unwrap_or_else(|e| panic!("test image {index} does not run on the host: {e}"));
        let _ = writeln!(w, "    Expected {{ class: {}, logits: &{:?} }},", prediction.class, prediction.logits);
    }
    let _ = writeln!(w, "];");
    src
}
