//! The sizing rules of `firmware/sizing.rs` on real builds (a step of `cargo xtask test`):
//! a model too big for a board's flash stops each program's build with a message naming
//! the model, the board and the program, and a model that only the old rule refused
//! (every buffer charged to every program) builds and passes its self-test.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use fitnets_shared::Model;
use fitnets_shared::format::encode::encode;
use fitnets_shared::ops::Window;
use fitnets_shared::tensor::Shape;
use fitnets_tests::Arch;

use crate::boards::{self, Board, Transport};
use crate::firmware::{self, Mode};
use crate::size::sizing::{self, Program, Sizes};
use crate::tools::{self, root};

/// The board both checks run on: 1 MB of flash and 128 KB of RAM, and a QEMU machine.
const BOARD: &str = "stm32f4";

/// Runs both checks.
pub fn check() -> anyhow::Result<()> {
    let board = boards::find(BOARD).context("the stm32f4 board is listed")?;
    let dir = root().join("target/xtask/fits");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    too_big_for_flash(board, &dir)?;
    only_counted_twice(board, &dir)
}

/// What the old rule charged for code: a blob it passed but the linker refused.
const OLD_CODE_BYTES: u64 = 24 * 1024;

/// A blob of about 1,000 KB, which the old rule (24 KB of code) let through to fail at
/// the linker: every program must now refuse it at build time, naming the model, the
/// board and the program.
fn too_big_for_flash(board: Board, dir: &Path) -> anyhow::Result<()> {
    let memory = crate::size::memory(board)?;
    // A dense layer from a 32x32 image: about 1,043 bytes of blob per class.
    let mut classes = 990;
    let (blob, bytes) = loop {
        let blob = write_model(dir, "too-big", Shape::new(32, 32, 1), &[Arch::Flatten, Arch::Dense(classes)], classes)?;
        let bytes = std::fs::metadata(&blob).with_context(|| format!("reading {}", blob.display()))?.len();
        if bytes + OLD_CODE_BYTES <= memory.flash {
            break (blob, bytes);
        }
        classes -= 2;
    };
    for program in [Mode::Selftest, Mode::Serve, Mode::Bench] {
        let output = build_output(board, &blob, program)?;
        ensure!(!output.status.success(), "the {} program built with a {bytes}-byte blob on {BOARD}", program.bin());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let expected = format!("does not fit the {} program on the board {BOARD}", program.bin());
        if !stderr.contains(&expected) || !stderr.contains(&blob.display().to_string()) {
            bail!(
                "building {} with {} failed without naming the model, board and program:\n{stderr}",
                program.bin(),
                blob.display()
            );
        }
    }
    eprintln!("a {bytes}-byte blob is refused by every program on {BOARD}, naming it");
    Ok(())
}

/// A 200x200 grayscale model whose arena, image, frame buffers and stack together exceed
/// the board's RAM, while each program's own share fits: it must build and pass its
/// self-test under QEMU.
fn only_counted_twice(board: Board, dir: &Path) -> anyhow::Result<()> {
    let arch = [Arch::ConvRelu { window: Window::valid(4, 4, 4, 4), outputs: 8 }, Arch::Flatten, Arch::Dense(10)];
    let blob = write_model(dir, "wide-input", Shape::new(200, 200, 1), &arch, 10)?;
    let bytes = std::fs::read(&blob).with_context(|| format!("reading {}", blob.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", blob.display()))?;
    let sizes = Sizes::of(&model);
    let every_buffer = sizes.arena + sizes.input + sizes.rx_frame + sizes.tx_frame + sizing::STACK_BYTES;
    let memory = crate::size::memory(board)?;
    ensure!(
        every_buffer > memory.ram,
        "the check's model needs only {every_buffer} bytes with every buffer counted, under {BOARD}'s {} bytes of \
         RAM: it no longer shows the rule",
        memory.ram
    );
    for program in Program::ALL {
        firmware::build(board, board.default_transport(), Some(&blob), &[crate::size::mode(program)])?;
    }
    crate::qemu::selftest(board, Some(&blob))?;
    eprintln!(
        "a 200x200 model ({every_buffer} bytes with every buffer counted, {} of RAM) builds every program and \
         passes its self-test on {BOARD}",
        memory.ram
    );
    Ok(())
}

/// Writes a model of `arch` with drawn weights to `dir/<name>.fnet`.
fn write_model(dir: &Path, name: &str, input: Shape, arch: &[Arch], classes: u16) -> anyhow::Result<PathBuf> {
    let spec = fitnets_tests::model(name, input, arch, classes, 7);
    let blob = encode(&spec).map_err(|e| anyhow::anyhow!("encoding the check's model {name}: {e:?}"))?;
    let path = dir.join(format!("{name}.fnet"));
    std::fs::write(&path, blob).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Builds one program for `board` with `blob`, capturing the compiler's messages.
fn build_output(board: Board, blob: &Path, program: Mode) -> anyhow::Result<std::process::Output> {
    let transport: Transport = board.default_transport();
    let mut cmd = tools::cargo(&root().join("firmware"));
    cmd.args(["build", "--release", "--target", board.target, "--no-default-features", "--features"])
        .arg(format!("{},{}", board.name, transport.feature()))
        .args(["--bin", program.bin()])
        .env("FITNETS_MODEL", blob);
    eprintln!("$ FITNETS_MODEL={} cargo build --bin {} (expected to fail)", blob.display(), program.bin());
    cmd.output().context("could not start cargo")
}
