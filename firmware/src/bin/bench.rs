//! Bench mode, for `cargo xtask bench`: one inference with instruction-count markers
//! around each of its stages, then one inside a single pair of markers, then exit.
//!
//! The markers are the two exported functions below; QEMU's instruction-count plugin
//! (built by xtask) counts the instructions executed between each call of
//! `bench_region_start` and the next call of `bench_region_end`. Regions, in order:
//! 0, an empty one (the markers' own cost); then one per stage of
//! `fitnets_shared::run_traced` (input, each step, argmax); last, the whole inference.
#![no_std]
#![no_main]

use core::sync::atomic::AtomicU32;

use fitnets_firmware::model::INPUT_BYTES;
use fitnets_firmware::{app, boards, images, link, stack};

/// Written by the markers, so that they are not empty (identical empty functions may be
/// merged into one address) and not removed (a volatile write always happens).
static MARKS: AtomicU32 = AtomicU32::new(0);

/// Start of a counted region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_region_start() {
    // SAFETY: `as_ptr` points at the static's own value; nothing else accesses it while
    // this single-threaded firmware runs here.
    unsafe { core::ptr::write_volatile(MARKS.as_ptr(), 1) };
}

/// End of a counted region.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_region_end() {
    // SAFETY: as in `bench_region_start`.
    unsafe { core::ptr::write_volatile(MARKS.as_ptr(), 2) };
}

// A model this program cannot fit on the board stops its build here, with the numbers.
const _: () = fitnets_firmware::app::assert_fits(fitnets_firmware::model::BENCH_MISFIT);

#[cortex_m_rt::entry]
fn main() -> ! {
    let _board = boards::init();
    let model = app::embedded_model();
    let arena = app::arena();
    let pixels = cortex_m::singleton!(: [u8; INPUT_BYTES] = [0; INPUT_BYTES]).expect("main runs once");
    // A noise image: every branch of the kernels sees varied data.
    images::fill(2, pixels);

    bench_region_start();
    bench_region_end();
    let traced = fitnets_shared::run_traced(&model, pixels, arena, |_, starting| {
        if starting { bench_region_start() } else { bench_region_end() }
    });
    let class = match traced {
        Ok(prediction) => prediction.class,
        Err(e) => defmt::panic!("inference failed: {}", e),
    };
    bench_region_start();
    let again = fitnets_shared::run(&model, pixels, arena).map(|p| p.class);
    bench_region_end();
    if again != Ok(class) {
        defmt::panic!("the traced and the plain inference disagree");
    }
    defmt::info!("bench: class {=u16}; stack: {=usize} bytes at most", class, stack::peak_bytes());
    link::exit(0)
}
