//! `cargo xtask test`: every check CI runs, all of them, failures collected and
//! reported together at the end.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::tools::{self, cargo, root};

/// The targets `shared` must build for without `std` or `alloc`: Cortex-M4F/M7 and the
/// Cortex-M0+ floor (no DSP, no FPU).
const THUMB_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"];

/// The checks, in order, each with a name for the summary.
fn checks() -> Vec<(String, Command)> {
    let root = root();
    let firmware = root.join("firmware");
    let with = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = cargo(dir);
        cmd.args(args);
        cmd
    };
    let mut doc = with(&root, &["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    let mut checks = vec![
        ("fmt".to_string(), with(&root, &["fmt", "--all", "--check"])),
        ("clippy".into(), with(&root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        ("tests".into(), with(&root, &["test", "--workspace"])),
        ("rustdoc".into(), doc),
    ];
    for target in THUMB_TARGETS {
        checks.push((
            format!("shared for {target}"),
            with(&root, &["build", "-p", "fitnets-shared", "--target", target]),
        ));
    }
    checks.push(("firmware fmt".into(), with(&firmware, &["fmt", "--all", "--check"])));
    checks.push(("firmware clippy".into(), with(&firmware, &["clippy", "--release", "--", "-D", "warnings"])));
    checks.push(("firmware build".into(), with(&firmware, &["build", "--release"])));
    checks
}

/// The firmware under QEMU (Cortex-M4F, mps2-an386): it checks its embedded model's
/// logits against the host's and exits with the verdict through semihosting.
fn firmware_under_qemu() -> anyhow::Result<()> {
    tools::ensure_program("qemu-system-arm", "qemu-system-arm")?;
    let mut cmd = cargo(&root().join("firmware"));
    cmd.args(["run", "--release"]);
    tools::run_with_timeout(&mut cmd, QEMU_LIMIT)
}

/// Far above the few seconds the selftest takes; only a hang reaches it.
const QEMU_LIMIT: Duration = Duration::from_secs(300);

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask test` takes no arguments (got `{arg}`)");
    }
    tools::ensure_rust_targets()?;
    let mut checks = checks();
    let mut failed = Vec::new();
    let start = Instant::now();
    for (name, cmd) in &mut checks {
        eprintln!("\n== {name}");
        if let Err(e) = tools::run(cmd) {
            eprintln!("!! {name}: {e:#}");
            failed.push(name.clone());
        }
    }
    eprintln!("\n== firmware under QEMU");
    if let Err(e) = firmware_under_qemu() {
        eprintln!("!! firmware under QEMU: {e:#}");
        failed.push("firmware under QEMU".to_string());
    }
    let total = checks.len() + 1;
    eprintln!("\n{} of {} checks passed in {:.0?}", total - failed.len(), total, start.elapsed());
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
