//! Build script: picks the board's `memory.x`, embeds the model blob that `FITNETS_MODEL`
//! names, sizes every buffer the firmware needs exactly, and records what the host computes
//! for the self-test images, so the firmware can check that the device computes the same
//! logits bit for bit.
//!
//! The sizing rules live in `sizing.rs`, shared with `cargo xtask size`: each program
//! (`selftest`, `serve`, `bench`) gets a `<PROGRAM>_MISFIT` message, empty when the model
//! fits it on the board, and refuses to compile otherwise (`app::assert_fits`), so a model that
//! fits the self-test but not `serve` still builds the self-test.
//!
//! It writes `memory.x`, `model.fnet` (the blob) and `model.rs` (sizes and expected
//! results) to `OUT_DIR`; `src/model.rs` includes the latter. For the `kernels` program
//! it also writes `cases.rs` and `case-N.fnet`: random models (the generator of
//! `tests/tests/inference.rs`), a random input each and what the host computes for it. A blob that does not
//! validate fails the build here; one that a program cannot fit fails that program's
//! build with the numbers, instead of failing at the linker or on the device.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use fitnets_shared::{Model, plan};

// The sizing rules, shared with `cargo xtask size`. Its `images` is the very module the
// firmware uses: host and device generate the same pixels.
#[path = "sizing.rs"]
#[allow(dead_code)] // the table's writer is xtask's
mod sizing;

use sizing::{Memory, Program, Sizes, images};

/// The model embedded when `FITNETS_MODEL` is not set (relative to this folder).
const DEFAULT_MODEL: &str = "models/fashion-fitnet.fnet";

/// The boards, by cargo feature, each with the target it must be built for. Each has
/// `memory/<feature>.x`.
const BOARDS: [(&str, &str); 6] = [
    ("qemu-m4", "thumbv7em-none-eabihf"),
    ("qemu-m7", "thumbv7em-none-eabihf"),
    ("stm32f4", "thumbv7em-none-eabihf"),
    ("nrf52840dk", "thumbv7em-none-eabihf"),
    ("qemu-m0plus", "thumbv6m-none-eabi"),
    ("nucleo-g071rb", "thumbv6m-none-eabi"),
];

/// Random models the `kernels` program checks.
const KERNEL_CASES: usize = 64;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = board();
    let memory = Path::new("memory").join(format!("{board}.x"));
    let script = fs::read_to_string(&memory).unwrap_or_else(|e| panic!("cannot read {}: {e}", memory.display()));
    // cortex-m-rt's `link.x` includes `memory.x` from the linker search path.
    fs::write(out.join("memory.x"), &script).expect("cannot write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", memory.display());
    let flash =
        sizing::region_length(&script, "FLASH").unwrap_or_else(|| panic!("{}: no FLASH length", memory.display()));
    let ram = sizing::region_length(&script, "RAM").unwrap_or_else(|| panic!("{}: no RAM length", memory.display()));

    // Cargo runs build scripts in the package folder, so a relative path is taken from
    // `firmware/`.
    println!("cargo:rerun-if-env-changed=FITNETS_MODEL");
    let path = env::var_os("FITNETS_MODEL").map_or_else(|| PathBuf::from(DEFAULT_MODEL), PathBuf::from);
    println!("cargo:rerun-if-changed={}", path.display());
    let blob = fs::read(&path).unwrap_or_else(|e| panic!("cannot read the model {}: {e}", path.display()));
    let model =
        Model::from_bytes(&blob).unwrap_or_else(|e| panic!("{} is not a valid fitnets model: {e}", path.display()));
    let sizes = Sizes::of(&model);

    // Each program checks its own fit when it compiles (see `generate`): a model that
    // only the self-test can hold still builds the self-test.
    println!("cargo:rerun-if-changed={}", sizing::TABLE);
    let table = fs::read_to_string(sizing::TABLE).unwrap_or_else(|e| panic!("cannot read {}: {e}", sizing::TABLE));
    let rows = sizing::parse_table(&table).unwrap_or_else(|e| panic!("{e}"));
    let memory = Memory { flash, ram };
    let misfits: Vec<(Program, String)> = Program::ALL
        .into_iter()
        .map(|program| {
            // A board being added has no row until `cargo xtask size --update` measures
            // it, which needs it to build: its fit is then the linker's to check, and
            // `cargo xtask size --check` fails until the row is there.
            let allowance = match rows.iter().find(|r| r.board == board && r.program == program) {
                Some(row) => row.allowance,
                None => {
                    println!(
                        "cargo:warning={}: no measured sizes for the {} program on {board}: run `cargo xtask size \
                         --update`",
                        sizing::TABLE,
                        program.name()
                    );
                    sizing::Allowance { code: 0, ram: 0 }
                }
            };
            let why = sizing::misfit(
                &path.display().to_string(),
                board,
                program,
                blob.len() as u64,
                &sizes,
                allowance,
                memory,
            );
            (program, why.unwrap_or_default())
        })
        .collect();

    fs::write(out.join("model.fnet"), &blob).expect("cannot write model.fnet to OUT_DIR");
    fs::write(out.join("model.rs"), generate(&model, &sizes, board, &misfits))
        .expect("cannot write model.rs to OUT_DIR");
    fs::write(out.join("cases.rs"), kernel_cases(&out)).expect("cannot write cases.rs to OUT_DIR");
}

/// Random models for the `kernels` program: the blobs as `case-N.fnet` in `out`, and
/// the source of `cases.rs` (each case's blob, input pixels and the host's logits; the
/// largest arena). Seeded, so every build checks the same cases.
fn kernel_cases(out: &Path) -> String {
    use fitnets_shared::format::encode::encode;

    let mut src = String::from("// Generated by build.rs: random models and the host's results.\n\n");
    let mut largest = 0;
    let _ = writeln!(src, "/// Random models, an input each and the logits the host computes.");
    let _ = writeln!(src, "static CASES: [Case; {KERNEL_CASES}] = [");
    for seed in 0..KERNEL_CASES as u64 {
        let (input, arch, classes) = fitnets_tests::random_arch(seed);
        let mut spec = fitnets_tests::model("random", input, &arch, classes, seed);
        // Every other case with one requantization per maxout unit: the kernels' other path.
        if seed % 2 == 1 {
            fitnets_tests::share_maxout_scales(&mut spec);
        }
        let blob = encode(&spec).unwrap_or_else(|e| panic!("random model {seed} ({arch:?}) does not encode: {e}"));
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("random model {seed} is invalid: {e}"));
        let mut rng = fitnets_tests::SplitMix(seed ^ 0x5EED);
        let pixels: Vec<u8> = (0..input.len()).map(|_| rng.range(0, 255) as u8).collect();
        let arena_bytes = plan::arena_bytes(&model) as usize;
        largest = largest.max(arena_bytes);
        let mut arena = vec![0u8; arena_bytes];
        let prediction = fitnets_shared::run(&model, &pixels, &mut arena)
            .unwrap_or_else(|e| panic!("random model {seed} does not run on the host: {e}"));
        let name = format!("case-{seed}.fnet");
        fs::write(out.join(&name), &blob).unwrap_or_else(|e| panic!("cannot write {name} to OUT_DIR: {e}"));
        let _ = writeln!(
            src,
            "    Case {{ blob: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}\")), pixels: &{pixels:?}, \
             logits: &{:?} }},",
            prediction.logits
        );
    }
    let _ = writeln!(src, "];");
    let _ = writeln!(src, "/// The largest arena of the cases.");
    let _ = writeln!(src, "const CASES_ARENA_BYTES: usize = {largest};");
    src
}

/// The one board feature that is on; fails the build unless there is exactly one, and
/// unless exactly one log transport is on.
fn board() -> &'static str {
    let on =
        |feature: &str| env::var_os(format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"))).is_some();
    let boards: Vec<(&str, &str)> = BOARDS.into_iter().filter(|(b, _)| on(b)).collect();
    let [(board, wanted)] = boards[..] else {
        let names: Vec<&str> = BOARDS.iter().map(|(b, _)| *b).collect();
        let found: Vec<&str> = boards.iter().map(|(b, _)| *b).collect();
        panic!(
            "choose exactly one board feature of {names:?} (found {found:?}); for any but the default, \
             build with `--no-default-features --features <board>`"
        );
    };
    let target = env::var("TARGET").unwrap_or_default();
    if target != wanted {
        panic!("the board {board} is built for {wanted}, not {target}: add `--target {wanted}`");
    }
    match (on("qemu"), on("rtt")) {
        (true, false) | (false, true) => board,
        (qemu, rtt) => panic!(
            "choose exactly one log transport for {board}: the feature `qemu` (semihosting, under QEMU) or \
             `rtt` (a real board) (qemu: {qemu}, rtt: {rtt})"
        ),
    }
}

/// The source of `model.rs`: the blob, its sizes and the host's results on the test images.
fn generate(model: &Model<'_>, sizes: &Sizes, board: &str, misfits: &[(Program, String)]) -> String {
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
    for (program, why) in misfits {
        let _ = writeln!(
            w,
            "/// Why the model cannot fit the `{}` program on this board; empty when it fits.",
            program.name()
        );
        let _ = writeln!(w, "pub const {}_MISFIT: &str = {why:?};", program.name().to_uppercase());
    }
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
