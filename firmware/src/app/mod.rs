//! The application: what the firmware does, on any board. It sees peripherals only as
//! `embedded-io` traits and its memory only as the static buffers `build.rs` sized.

pub mod selftest;
pub mod serve;

use fitnets_shared::{Model, plan};

use crate::model;

/// Stops a program's build when `misfit` (one of `model::<PROGRAM>_MISFIT`, written by
/// `build.rs` from the sizing rules) says the model cannot fit it on this board. Use in
/// a `const` item: `const _: () = app::assert_fits(model::SERVE_MISFIT);`.
pub const fn assert_fits(misfit: &str) {
    if !misfit.is_empty() {
        panic!("{}", misfit);
    }
}

/// The embedded model, decoded and checked against what `build.rs` planned.
///
/// build.rs validated the same bytes, so a decode error here means the flash is corrupt;
/// a different arena means host and device plan differently, a bug in `shared`. Both
/// panic, which under QEMU exits with a failure.
pub fn embedded_model() -> Model<'static> {
    let model = match Model::from_bytes(model::BLOB) {
        Ok(model) => model,
        Err(e) => defmt::panic!("the embedded model does not decode: {}", e),
    };
    let arena = plan::arena_bytes(&model) as usize;
    if arena != model::ARENA_BYTES {
        defmt::panic!("the device plans an arena of {=usize} bytes, the host {=usize}", arena, model::ARENA_BYTES);
    }
    defmt::info!(
        "fitnets on {=str}: model {=str} (CRC-32 {=u32:#010x}), {=usize} bytes, arena {=usize} bytes",
        model::BOARD,
        model.name(),
        model.crc(),
        model::BLOB.len(),
        arena,
    );
    model
}

/// The activation arena, exactly `plan::arena_bytes` long, in `.bss` (not on the stack)
/// so the ELF's RAM figure accounts for it. Panics if called twice.
pub fn arena() -> &'static mut [u8] {
    cortex_m::singleton!(: [u8; model::ARENA_BYTES] = [0; model::ARENA_BYTES]).expect("the arena is taken once")
}
