//! `cargo xtask qemu --board qemu-m4|qemu-m7|stm32f4|qemu-m0plus [--model F] [--mode selftest|serve]
//! [--port N]`: builds the firmware and runs it under QEMU, decoding its defmt logs.
//!
//! `selftest` exits with the firmware's verdict. `serve` puts the board's UART on
//! `127.0.0.1:PORT` (a TCP server, 7878 unless `--port` says otherwise) and runs until
//! interrupted.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::boards::{self, Board, Qemu, Transport};
use crate::firmware::{self, Mode};
use crate::{logs, tools};

/// Far above the seconds a self-test takes; only a hang reaches it.
pub const SELFTEST_LIMIT: Duration = Duration::from_secs(300);

/// Where QEMU connects the board's UART.
#[derive(Clone, Debug)]
pub enum Serial {
    /// Nowhere.
    Null,
    /// QEMU connects to a TCP server at this address (the xtask's own listener).
    Connect(std::net::SocketAddr),
    /// QEMU listens on this loopback port.
    Listen(u16),
}

/// The `qemu-system-arm` command that runs `elf` on `qemu`, with semihosting for logs and
/// the exit code and without any display or monitor, so stdout carries only the logs.
pub fn command(qemu: Qemu, elf: &Path, serial: &Serial) -> Command {
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-machine", qemu.machine]);
    if let Some(cpu) = qemu.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args(["-display", "none", "-monitor", "none", "-semihosting-config", "enable=on,target=native"]);
    let serial = match serial {
        Serial::Null => "null".to_string(),
        Serial::Connect(addr) => format!("tcp:{addr},nodelay=on"),
        Serial::Listen(port) => format!("tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"),
    };
    cmd.args(["-serial", &serial, "-kernel"]).arg(elf);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    cmd
}

/// A running emulator with its log decoder.
#[derive(Debug)]
pub struct Running {
    child: Child,
    logs: std::thread::JoinHandle<anyhow::Result<Vec<String>>>,
    shown: String,
}

/// Starts `elf` on `board` under QEMU; logs are printed with the board's name in front.
pub fn start(board: Board, elf: &Path, serial: &Serial) -> anyhow::Result<Running> {
    start_with(board, elf, serial, &[])
}

/// [`start`], with more QEMU options before the kernel (a plugin, say).
pub fn start_with(board: Board, elf: &Path, serial: &Serial, extra: &[std::ffi::OsString]) -> anyhow::Result<Running> {
    tools::ensure_program("qemu-system-arm", "qemu-system-arm")?;
    let mut cmd = command(board.qemu()?, elf, serial);
    cmd.args(extra);
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let mut child = cmd.spawn().with_context(|| format!("could not start {shown}"))?;
    let stdout = child.stdout.take().context("QEMU's stdout")?;
    let logs = logs::spawn_decoder(elf, format!("[{}] ", board.name), stdout)?;
    Ok(Running { child, logs, shown })
}

impl Running {
    /// Waits for the emulator to exit, for at most `limit`, and returns its status and the
    /// decoded log lines. Past the limit it is killed.
    pub fn wait(mut self, limit: Duration) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} did not finish within {limit:?}", self.shown);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = self.logs.join().map_err(|_| anyhow::anyhow!("the log decoder panicked"))??;
        Ok((status, lines))
    }

    /// Stops the emulator (a `serve` firmware never exits by itself).
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs.join().ok().and_then(Result::ok).unwrap_or_default()
    }
}

/// Waits, for at most `limit`, for QEMU to connect the board's UART to `listener`
/// ([`Serial::Connect`]).
pub fn accept(listener: &TcpListener, limit: Duration) -> anyhow::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("waiting for QEMU to connect the UART"),
        }
    }
}

/// Builds and runs the self-test on `board`; fails unless the firmware exits with 0.
pub fn selftest(board: Board, model: Option<&Path>) -> anyhow::Result<()> {
    verdict(board, model, Mode::Selftest, "self-test")
}

/// Runs the `kernels` program (random models against the host) on `board` under QEMU.
pub fn kernels(board: Board) -> anyhow::Result<()> {
    verdict(board, None, Mode::Kernels, "kernel check")
}

/// Builds the `kernels` program for `board` with the bug on purpose of `shared`
/// (`FITNETS_BREAK_KERNEL=1`: the device rounds negative ties the wrong way, the host
/// does not), in a target folder of its own, and fails unless the kernel check catches
/// it: a check that cannot fail proves nothing.
pub fn kernels_catch_a_broken_kernel(board: Board) -> anyhow::Result<()> {
    let firmware = crate::tools::root().join("firmware");
    let target_dir = firmware.join("target/broken");
    let mut cmd = crate::tools::cargo(&firmware);
    cmd.args(["build", "--release", "--target", board.target, "--no-default-features", "--features"])
        .arg(format!("{},{}", board.name, Transport::Qemu.feature()))
        .args(["--bin", Mode::Kernels.bin()])
        .env("FITNETS_BREAK_KERNEL", "1")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("FITNETS_MODEL");
    tools::run(&mut cmd).context("building the kernel check with a broken kernel")?;
    let elf = target_dir.join(board.target).join("release").join(Mode::Kernels.bin());
    let (status, lines) = start(board, &elf, &Serial::Null)?.wait(SELFTEST_LIMIT)?;
    let verdicts: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("random models match") || l.contains("edge cases match"))
        .map(|l| l.trim())
        .collect();
    match (status.code(), verdicts.is_empty()) {
        (Some(0), _) => bail!("the kernel check passed with a broken kernel on {}", board.name),
        (_, false) => {
            eprintln!("the broken kernel was caught: {}", verdicts.join("; "));
            Ok(())
        }
        (code, true) => bail!("the broken kernel check ended without its verdict on {} ({code:?})", board.name),
    }
}

/// Runs a program that exits with a verdict, `what`, and fails unless it passed.
fn verdict(board: Board, model: Option<&Path>, mode: Mode, what: &str) -> anyhow::Result<()> {
    let build = firmware::build(board, Transport::Qemu, model, &[mode])?;
    let (status, _) = start(board, &build.elf(mode), &Serial::Null)?.wait(SELFTEST_LIMIT)?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => bail!("the {what} on {} failed (exit code {code})", board.name),
        None => bail!("the {what} on {} was killed ({status})", board.name),
    }
}

/// Arguments of `cargo xtask qemu`.
#[derive(clap::Args, Debug)]
pub struct QemuArgs {
    /// qemu-m4, qemu-m7, stm32f4 or qemu-m0plus.
    #[arg(long, default_value = "qemu-m4")]
    pub board: String,
    /// The model blob to embed (the default FitNet when not given).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// selftest, serve, bench or kernels.
    #[arg(long, default_value = "selftest")]
    pub mode: String,
    /// With serve: the TCP port on 127.0.0.1 the UART is put on.
    #[arg(long, default_value_t = 7878)]
    pub port: u16,
}

/// What `cargo xtask qemu --mode bench` asks of the bench (which runs QEMU through this
/// module, so it is called by the command layer, not from here).
#[derive(Debug)]
pub struct Bench {
    pub board: Board,
    pub model: Option<PathBuf>,
}

/// The subcommand: runs the board, or returns what `--mode bench` asks for.
pub fn run(args: &QemuArgs) -> anyhow::Result<Option<Bench>> {
    let board = boards::find(&args.board)?;
    let model = args.model.clone();
    let mode = Mode::parse(&args.mode)?;
    let port = args.port;
    board.qemu()?;

    match mode {
        Mode::Selftest => selftest(board, model.as_deref()).map(|()| None),
        Mode::Serve => {
            let build = firmware::build(board, Transport::Qemu, model.as_deref(), &[Mode::Serve])?;
            eprintln!("{} serves on 127.0.0.1:{port}; stop it with Ctrl-C", board.name);
            let running = start(board, &build.elf(Mode::Serve), &Serial::Listen(port))?;
            let (status, _) = running.wait(Duration::MAX)?;
            bail!("QEMU exited ({status})")
        }
        Mode::Bench => Ok(Some(Bench { board, model })),
        Mode::Kernels => kernels(board).map(|()| None),
    }
}
