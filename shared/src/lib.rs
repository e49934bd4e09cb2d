//! fitnets' model format and int8 inference engine, shared by the host and the device.
//!
//! `no_std` and allocation-free: the host evaluates models with this very code, so
//! host accuracy equals device accuracy bit for bit.
//!
//! - [`format`]: the blob (magic, version, postcard body, CRC-32) and
//!   [`format::Model::from_bytes`], which validates everything once.
//! - [`ops::reference`]: the plain, TFLite-exact int8 kernels.
//! - [`quant`]: the fixed-point arithmetic they share.
//! - [`plan`]: the exact activation arena a model needs.
//! - [`cost`]: instructions of an inference predicted from the model's shape.
//! - [`run()`]: executes a validated model in a caller-provided arena.
//! - [`wire`]: host ↔ device frames (postcard, CRC, COBS).
#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod cost;
pub mod format;
pub mod ops;
pub mod plan;
pub mod quant;
pub mod run;
pub mod tensor;
pub mod wire;

pub use format::{DecodeError, Model};
pub use plan::arena_bytes;
pub use run::{Prediction, RunError, Stage, run, run_traced, run_with_columns};
pub use tensor::Shape;
