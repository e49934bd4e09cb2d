//! The proof that no int32 accumulator overflows, for any input.
//!
//! A conv or fully connected output channel accumulates `Σ (x − in_zp) · w + bias`
//! and requantization first shifts it left by `max(shift, 0)`. Every `x` is an `i8`, so
//! `|x − in_zp| <= max_abs_offset(in_zp)` (at most 255), and
//!
//! ```text
//! |acc| << max(shift, 0)  <=  (Σ|w| · max|x − in_zp| + |bias|) << max(shift, 0)
//! ```
//!
//! If that bound fits an `i32` the channel is safe for every input; `shared`'s decoder
//! checks the same inequality and rejects a blob that breaks it. This module checks it
//! before encoding, to tell the user which layer and channel fail and by how much.

use std::fmt;

use fitnets_shared::quant::max_abs_offset;

/// A channel whose accumulator could overflow: the numbers of the failed bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// The layer, as in messages: `layer 3 (conv2)`.
    pub layer: String,
    /// Output channel before maxout.
    pub channel: usize,
    /// `Σ|w|` over the channel's int8 weights.
    pub sum_abs_weights: i64,
    /// `max|x − in_zp|` over all int8 inputs.
    pub max_input: i64,
    /// `|bias|`, int32.
    pub bias: i64,
    pub shift: i8,
    /// `Σ|w| · max|x − in_zp| + |bias|`.
    pub bound: i64,
    /// `i32::MAX >> max(shift, 0)`: the largest bound that is safe.
    pub limit: i64,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: output channel {} could overflow its int32 accumulator: Σ|w| {} × max|x − zp| {} + |bias| {} = {} \
             exceeds {} (i32::MAX >> shift {}); refusing to export. A wider output range (e.g. --calibration \
             minmax, more calibration images) lowers the shift; a smaller fan-in or smaller weights lower Σ|w|",
            self.layer,
            self.channel,
            self.sum_abs_weights,
            self.max_input,
            self.bias,
            self.bound,
            self.limit,
            self.shift.max(0)
        )
    }
}

impl std::error::Error for Overflow {}

/// Checks every output channel of a layer: `weights` is `bias.len()` rows of equal
/// length, `shifts` one per channel, `input_zero_point` the input tensor's.
pub fn prove(layer: &str, weights: &[i8], bias: &[i32], shifts: &[i8], input_zero_point: i8) -> Result<(), Overflow> {
    let max_input = max_abs_offset(input_zero_point);
    let fan_in = weights.len() / bias.len().max(1);
    for (channel, ((row, &b), &shift)) in weights.chunks_exact(fan_in.max(1)).zip(bias).zip(shifts).enumerate() {
        let sum_abs_weights: i64 = row.iter().map(|&w| i64::from(w.unsigned_abs())).sum();
        let bias = i64::from(b).abs();
        let bound = sum_abs_weights * max_input + bias;
        let limit = i64::from(i32::MAX >> shift.max(0));
        if bound > limit {
            return Err(Overflow {
                layer: layer.to_string(),
                channel,
                sum_abs_weights,
                max_input,
                bias,
                shift,
                bound,
                limit,
            });
        }
    }
    Ok(())
}
