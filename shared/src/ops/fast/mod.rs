//! Optimized kernels: the same bits as [`super::reference`], fewer instructions.
//!
//! [`conv_maxout_pool`] runs every conv step of [`crate::plan`]: a conv, its maxout and a
//! tiling max pooling in one pass, on columns of four pixels per inner loop and
//! requantization constants decoded once per step (`scale`). The columns are 16-bit
//! lanes for the DSP extension's `SMLAD` on Cortex-M4/M7/M33, bytes for a plain
//! multiplier on Cortex-M0+ (one `asm!` loop with its accumulators in high registers)
//! and the host ([`Columns`]); the arena is planned for the larger, so every target
//! plans the same.
//! [`fully_connected_maxout`] runs every fully connected step on a packed input, two
//! output channels per inner loop. [`packed`] is their arithmetic: single DSP
//! instructions on Cortex-M4/M7/M33 (`cfg(fitnets_dsp)`), the same arithmetic in plain
//! Rust elsewhere, so the host, a Cortex-M0+ and a Cortex-M4 compute the same logits.
//! The tests compare every kernel here, in both column layouts, with its reference twin
//! on random cases; the firmware's self-test, its kernel check and `cargo xtask classify`
//! compare each device build with the host.

mod columns;
mod conv;
mod dense;
pub mod packed;
mod scale;

pub use columns::Columns;
pub use conv::{Fused, conv_maxout_pool};
pub use dense::{dense_scratch_words, fully_connected_maxout};
pub use scale::requantize_edges;
