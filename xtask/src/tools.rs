//! Running commands, and finding the tools they need.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// A `cargo` command in `dir`, through rustup's proxy so that each workspace's
/// `rust-toolchain.toml` applies. Inside `cargo xtask`, cargo exports variables meant
/// for the xtask build; they are dropped for the same reason.
pub fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir);
    for var in ["RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd`, echoing it, and fails unless it exits successfully.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status}) after {:.0?}", start.elapsed());
    }
    Ok(())
}

/// Makes sure the pinned toolchain has the thumb targets and components that
/// `rust-toolchain.toml` lists. rustup installs a missing toolchain from that file, but
/// not the missing targets of a toolchain that is already there.
pub fn ensure_rust_targets() -> anyhow::Result<()> {
    let toolchain =
        std::fs::read_to_string(root().join("rust-toolchain.toml")).context("reading rust-toolchain.toml")?;
    // The two array lines of the file: `targets = ["a", "b"]`, `components = [...]`.
    let list = |key: &str| -> Vec<String> {
        let Some(line) = toolchain.lines().find(|l| l.trim_start().starts_with(key)) else { return Vec::new() };
        let inner = line.split_once('[').map_or("", |(_, rest)| rest.trim_end().trim_end_matches(']'));
        inner.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).map(String::from).collect()
    };
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .context("rustup is needed to install the thumb targets")?;
    let installed = String::from_utf8_lossy(&installed.stdout).into_owned();
    let missing: Vec<String> =
        list("targets").into_iter().filter(|t| !installed.lines().any(|l| l.trim() == t)).collect();
    if !missing.is_empty() {
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "add"]).args(&missing).current_dir(root()).env_remove("RUSTUP_TOOLCHAIN");
        run(&mut cmd)?;
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add"]).args(list("components")).current_dir(root()).env_remove("RUSTUP_TOOLCHAIN");
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    run(&mut cmd)
}

/// Where Debian's `dataset-fashion-mnist` puts the Fashion-MNIST IDX files.
pub const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Makes sure `program` is on the PATH, installing Debian's `package` when running as
/// root, or fails with one line naming the package.
pub fn ensure_program(program: &str, package: &str) -> anyhow::Result<()> {
    let found =
        || Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success());
    ensure(&format!("`{program}`"), found, package)
}

/// Makes sure the file `path` exists, installing Debian's `package` when running as
/// root, or fails with one line naming the package.
pub fn ensure_file(path: &Path, package: &str) -> anyhow::Result<()> {
    ensure(&path.display().to_string(), || path.is_file(), package)
}

/// Installs `package` unless `present`, then checks again.
fn ensure(what: &str, present: impl Fn() -> bool, package: &str) -> anyhow::Result<()> {
    if present() {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root {
        bail!("{what} is missing: install the Debian package `{package}` (apt-get install {package})");
    }
    eprintln!("installing the Debian package {package} (for {what})");
    let mut update = Command::new("apt-get");
    update.arg("update").stdout(std::process::Stdio::null());
    run(&mut update)?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "--no-install-recommends", package]).env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut install)?;
    if !present() {
        bail!("installed `{package}` but {what} is still missing");
    }
    Ok(())
}
