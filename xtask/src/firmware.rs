//! Building the firmware for a board, and reading what was built.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::boards::{Board, Transport};
use crate::tools::{self, cargo, root};

/// The firmware's programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Checks the embedded model against the host's results and exits with the verdict.
    Selftest,
    /// Answers wire frames on the UART, forever.
    Serve,
    /// One inference between instruction-count markers (`cargo xtask bench`).
    Bench,
    /// Random models against the host's results (the optimized kernels' device check).
    Kernels,
}

impl Mode {
    /// Every program.
    pub const ALL: [Mode; 4] = [Mode::Selftest, Mode::Serve, Mode::Bench, Mode::Kernels];

    /// `selftest`, `serve`, `bench` or `kernels`.
    pub fn parse(text: &str) -> anyhow::Result<Mode> {
        match text {
            "selftest" => Ok(Mode::Selftest),
            "serve" => Ok(Mode::Serve),
            "bench" => Ok(Mode::Bench),
            "kernels" => Ok(Mode::Kernels),
            other => bail!("unknown mode `{other}`; the modes are selftest, serve, bench and kernels"),
        }
    }

    /// The firmware's binary.
    pub fn bin(self) -> &'static str {
        match self {
            Mode::Selftest => "selftest",
            Mode::Serve => "serve",
            Mode::Bench => "bench",
            Mode::Kernels => "kernels",
        }
    }
}

/// The ELF files of one build.
#[derive(Clone, Debug)]
pub struct Build {
    dir: PathBuf,
}

impl Build {
    /// The ELF of `mode`.
    pub fn elf(&self, mode: Mode) -> PathBuf {
        self.dir.join(format!("{}.elf", mode.bin()))
    }
}

/// The model the firmware embeds when none is given (what `firmware/build.rs` defaults to).
pub fn default_model() -> PathBuf {
    root().join("firmware/models/fashion-fitnet.fnet")
}

/// Builds `programs` for `board` (release), embedding `model` (the default when
/// `None`), and copies their ELFs to `firmware/target/boards/<board>-<transport>/`, so
/// builds for several boards can sit side by side in one cargo target folder. Only the
/// programs asked for are built: a model that fits the self-test but not `serve`
/// builds the self-test (each program checks its own fit as it compiles).
pub fn build(board: Board, transport: Transport, model: Option<&Path>, programs: &[Mode]) -> anyhow::Result<Build> {
    // Every command that builds firmware gets here: a fresh clone's toolchain may lack
    // the thumb targets. Checked once per run.
    static TARGETS: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if TARGETS.get().is_none() {
        tools::ensure_rust_targets()?;
        let _ = TARGETS.set(());
    }
    let firmware = root().join("firmware");
    let mut cmd = cargo(&firmware);
    cmd.args(["build", "--release", "--target", board.target, "--no-default-features", "--features"]);
    cmd.arg(format!("{},{}", board.name, transport.feature()));
    for program in programs {
        cmd.args(["--bin", program.bin()]);
    }
    if let Some(model) = model {
        let model = std::path::absolute(model).with_context(|| format!("model {}", model.display()))?;
        if !model.is_file() {
            bail!("the model {} does not exist", model.display());
        }
        cmd.env("FITNETS_MODEL", model);
    } else {
        cmd.env_remove("FITNETS_MODEL");
    }
    tools::run(&mut cmd).with_context(|| format!("building the firmware for {}", board.name))?;

    let built = firmware.join("target").join(board.target).join("release");
    let dir = firmware.join("target/boards").join(format!("{}-{}", board.name, transport.feature()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let build = Build { dir };
    for &mode in programs {
        let from = built.join(mode.bin());
        std::fs::copy(&from, build.elf(mode))
            .with_context(|| format!("copying {} to {}", from.display(), build.elf(mode).display()))?;
    }
    Ok(build)
}
