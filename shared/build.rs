//! Sets `cfg(fitnets_dsp)` on cores with the Arm DSP extension (Cortex-M4, M7, M33:
//! `thumbv7em-*`, `thumbv8m.main-*`), where `ops::fast::packed` uses its instructions.
//! Read from the target name because `target_feature = "dsp"` is not visible to `cfg` on
//! a stable compiler.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fitnets_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo::rustc-cfg=fitnets_dsp");
    }
}
