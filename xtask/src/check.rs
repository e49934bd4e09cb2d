//! `cargo xtask test`: every check CI runs, all of them, failures collected and
//! reported together at the end.

use std::process::Command;
use std::time::Instant;

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

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask test` takes no arguments (got `{arg}`)");
    }
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
    eprintln!("\n{} of {} checks passed in {:.0?}", checks.len() - failed.len(), checks.len(), start.elapsed());
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
