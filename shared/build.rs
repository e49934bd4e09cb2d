//! Sets `cfg(fitnets_dsp)` on cores with the Arm DSP extension, where
//! `ops::fast::packed` uses its instructions: always on `thumbv7em-*` (Cortex-M4, M7),
//! where the extension is part of the architecture; on `thumbv8m.main-*` (Cortex-M33 and
//! later), where it is optional, only when the build asks for it with
//! `-C target-feature=+dsp` or names a core LLVM gives it (`-C target-cpu=cortex-m33`,
//! `cortex-m35p`, `cortex-m55`, `cortex-m85`). Read from the target name and the flags
//! because `target_feature = "dsp"` is not visible to `cfg` on a stable compiler.
//!
//! `FITNETS_BREAK_KERNEL=1` sets `cfg(fitnets_broken)` on bare-metal targets only: the
//! device's requantization then rounds negative ties the wrong way, a bug on purpose
//! that `cargo xtask test` builds into a firmware of its own to show that the kernel
//! check fails on it. The host build, which computes the expected logits, never has it.

/// Whether the compiler flags of this build give the core the DSP extension.
fn flags_give_dsp() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    // `-Cname=value` or `-C name=value`.
    let values = flags.iter().enumerate().filter_map(|(i, f)| match f.strip_prefix("-C") {
        Some("") => flags.get(i + 1).copied(),
        Some(rest) => Some(rest),
        None => None,
    });
    // A core's default, unless a target feature says otherwise (the last one wins).
    let (mut cpu, mut feature) = (false, None);
    for value in values {
        if let Some(features) = value.strip_prefix("target-feature=") {
            for f in features.split(',') {
                match f.trim() {
                    "+dsp" => feature = Some(true),
                    "-dsp" => feature = Some(false),
                    _ => {}
                }
            }
        } else if let Some(name) = value.strip_prefix("target-cpu=") {
            cpu = matches!(name, "cortex-m33" | "cortex-m35p" | "cortex-m55" | "cortex-m85");
        }
    }
    feature.unwrap_or(cpu)
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fitnets_dsp)");
    println!("cargo::rustc-check-cfg=cfg(fitnets_broken)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=FITNETS_BREAK_KERNEL");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumb") && std::env::var_os("FITNETS_BREAK_KERNEL").is_some_and(|v| v == "1") {
        println!("cargo::rustc-cfg=fitnets_broken");
    }
    if target.starts_with("thumbv7em") || (target.starts_with("thumbv8m.main") && flags_give_dsp()) {
        println!("cargo::rustc-cfg=fitnets_dsp");
    }
}
