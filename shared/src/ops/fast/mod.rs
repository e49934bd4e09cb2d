//! Optimized kernels: the same bits as [`super::reference`], fewer instructions.
//!
//! [`conv_maxout_pool`] runs every conv step of [`crate::plan`]: a conv, its maxout and a
//! tiling max pooling in one pass, on packed 16-bit columns with four pixels per inner
//! loop and requantization constants decoded once per step (`scale`).
//! [`fully_connected_maxout`] runs every fully connected step on a packed input, two
//! output channels per inner loop. [`packed`] is their arithmetic: single DSP
//! instructions on Cortex-M4/M7/M33 (`cfg(fitnets_dsp)`), the same arithmetic in plain
//! Rust elsewhere, so the host, a Cortex-M0+ and a Cortex-M4 compute the same logits.
//! The tests compare every kernel here with its reference twin on random cases; the firmware's self-test and
//! `cargo xtask classify` compare the DSP build with the host.

mod conv;
mod dense;
pub mod packed;
mod scale;

pub use conv::{Fused, conv_maxout_pool};
pub use dense::{dense_scratch_words, fully_connected_maxout};
