//! Kernel check mode: random models through the device's int8 engine, each against the
//! logits the host computed at build time, then exit with the verdict (0 when all match
//! bit for bit).
//!
//! The embedded FitNet exercises only its own shapes; these models (the generator of the
//! host's `tests/tests/inference.rs`, seeded, built into the firmware by `build.rs`) vary
//! what the optimized kernels branch on: input channels that are and are not multiples
//! of 4 (the packed and the value-by-value column paths, windows with and without a
//! padded last run), odd widths (short last chunks), pool windows from 1x1 to 3x3,
//! maxout pieces, dense layers with odd channel counts, and the reference kernels'
//! layers around them. On a DSP core they run the `asm!` loops that the host cannot.
//! Then requantization alone, on edge cases that random models seldom reach
//! (`fitnets_shared::ops::fast::requantize_edges`).
#![no_std]
#![no_main]

use fitnets_firmware::{boards, link};
use fitnets_shared::Model;

/// One random model and what the host computes for its input.
struct Case {
    blob: &'static [u8],
    pixels: &'static [u8],
    logits: &'static [i8],
}

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

#[cortex_m_rt::entry]
fn main() -> ! {
    let _board = boards::init();
    let arena = cortex_m::singleton!(: [u8; CASES_ARENA_BYTES] = [0; CASES_ARENA_BYTES]).expect("main runs once");
    let mut matched = 0;
    for (index, case) in CASES.iter().enumerate() {
        let model = match Model::from_bytes(case.blob) {
            Ok(model) => model,
            Err(e) => {
                defmt::error!("case {}: the model does not decode: {}", index, e);
                continue;
            }
        };
        match fitnets_shared::run(&model, case.pixels, arena) {
            Ok(prediction) if prediction.logits == case.logits => matched += 1,
            Ok(prediction) => {
                defmt::error!("case {}: logits {} differ from the host's {}", index, prediction.logits, case.logits)
            }
            Err(e) => defmt::error!("case {}: inference failed: {}", index, e),
        }
    }
    defmt::info!("kernels: {} of {} random models match the host bit for bit", matched, CASES.len());
    // Requantization alone, on the edges that random models seldom reach.
    let (edges_matched, edges) = fitnets_shared::ops::fast::requantize_edges();
    defmt::info!("requantization: {} of {} edge cases match the reference", edges_matched, edges);
    link::exit(if matched == CASES.len() && edges_matched == edges { 0 } else { 1 })
}
