//! fitnets firmware: runs the embedded int8 FitNet on a Cortex-M.
//!
//! - [`app`]: what the firmware does, independent of the board: [`app::selftest`] checks
//!   the embedded model against the host's results, [`app::serve`] answers
//!   [`fitnets_shared::wire`] frames from a byte stream. It reaches peripherals only
//!   through `embedded-io` traits.
//! - [`boards`]: one small module per board (clocks, pins, the UART), chosen by a cargo
//!   feature.
//! - [`link`]: where logs (defmt over semihosting or RTT) and the exit code go, and the
//!   panic handler.
//! - [`model`]: the blob and the sizes `build.rs` computed for it.
//!
//! The binaries `selftest` and `serve` only initialize the board, take their static
//! buffers and run their mode.
#![no_std]

pub mod app;
pub mod boards;
pub mod images;
pub mod link;
pub mod model;
pub mod stack;
