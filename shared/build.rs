//! Sets `cfg(fitnets_dsp)` on cores with the Arm DSP extension (Cortex-M4, M7, M33:
//! `thumbv7em-*`, `thumbv8m.main-*`), where `ops::fast::packed` uses its instructions.
//! Read from the target name because `target_feature = "dsp"` is not visible to `cfg` on
//! a stable compiler.
//!
//! `FITNETS_BREAK_KERNEL=1` sets `cfg(fitnets_broken)` on bare-metal targets only: the
//! device's requantization then rounds negative ties the wrong way, a bug on purpose
//! that `cargo xtask test` builds into a firmware of its own to show that the kernel
//! check fails on it. The host build, which computes the expected logits, never has it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fitnets_dsp)");
    println!("cargo::rustc-check-cfg=cfg(fitnets_broken)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=FITNETS_BREAK_KERNEL");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumb") && std::env::var_os("FITNETS_BREAK_KERNEL").is_some_and(|v| v == "1") {
        println!("cargo::rustc-cfg=fitnets_broken");
    }
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo::rustc-cfg=fitnets_dsp");
    }
}
