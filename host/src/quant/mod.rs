//! Quantization and export: a trained run becomes an int8 blob that `shared` runs, on
//! the host and on the device alike.
//!
//! ```text
//! run (model.bin, run.json) ─extract─▶ FloatModel ─calibrate─▶ ranges ─quantize─▶ ModelSpec
//!                                                     ─▶ shared::format::encode ─▶ Model::from_bytes
//! ```
//!
//! - [`extract`]: burn's `Net` to a plain [`float::FloatModel`] in the blob's layouts
//!   (OHWI, NHWC flattening, unit-major maxout), batch norm folded, dropout dropped.
//! - [`float`]: that model and its forward pass.
//! - [`calibrate`]: activation ranges on training images (min/max, percentile, MSE).
//! - [`scheme`]: TFLite's int8 rules for one tensor or one output channel.
//! - [`overflow`]: the proof that no int32 accumulator can overflow for any input.
//! - [`quantize`]: the whole int8 model, layer by layer.
//! - [`export`]: the pipeline from a run to a validated blob.
//! - [`eval`]: the int8 blob on a test set with `shared`'s kernels, in parallel.
//! - `fitnets export` and `fitnets eval` on a blob are [`crate::commands::export`].
//!
//! Invariants: a blob this module writes has passed [`fitnets_shared::Model::from_bytes`];
//! every conv and fully connected channel was proven overflow-free before encoding
//! ([`overflow::prove`]), with the layer named when the proof fails; the device takes raw
//! `u8` pixels, normalized exactly by the blob's pixel table.

pub mod calibrate;
pub mod eval;
pub mod export;
pub mod extract;
pub mod float;
pub mod overflow;
pub mod quantize;
pub mod scheme;
