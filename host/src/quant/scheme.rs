//! The int8 scheme: how one float tensor or one output channel becomes integers.
//!
//! TFLite's rules (`shared/INT8-RULES.md`): activations asymmetric per tensor,
//! `real = scale · (q − zero_point)` with zero exactly representable; weights symmetric
//! per output channel in `[-127, 127]`; biases `i32` at scale `in_scale · w_scale`;
//! requantization by the Q0.31 multiplier and shift of `in_scale · w_scale / out_scale`
//! from [`quantize_multiplier`]. Scales are computed in `f64` from the `f32` scales the
//! blob stores, so the multipliers follow from what the blob says.

use fitnets_shared::format::Quant;
use fitnets_shared::quant::{SHIFT_MAX, quantize_multiplier};

use crate::data::Normalization;

/// The narrowest activation range: a tensor that calibration saw constant still gets a
/// positive scale.
pub const MIN_RANGE: f64 = 1e-6;

/// Largest bias magnitude, in accumulator units, that a channel is given. A channel
/// whose float bias would need more has negligible weights next to it; its weight scale
/// is raised until the bias fits, which keeps every accumulator bound far from `i32`.
pub const BIAS_LIMIT: f64 = (1 << 24) as f64;

/// A float range, `min <= max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    pub(super) const EMPTY: Range = Range { min: f32::INFINITY, max: f32::NEG_INFINITY };

    pub(super) fn add(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    pub(super) fn union(self, other: Range) -> Range {
        Range { min: self.min.min(other.min), max: self.max.max(other.max) }
    }
}

/// The asymmetric int8 quantization of `range`, widened to contain zero: TFLite's
/// `scale = (max − min) / 255`, `zero_point = round(−128 − min / scale)` clamped to the
/// int8 range, so that `0.0` maps to an integer exactly.
pub fn activation_quant(range: Range) -> Quant {
    let lo = f64::from(range.min).min(0.0);
    let hi = f64::from(range.max).max(0.0).max(lo + MIN_RANGE);
    let scale = ((hi - lo) / 255.0) as f32;
    let zero_point = (-128.0 - lo / f64::from(scale)).round().clamp(-128.0, 127.0) as i8;
    Quant { scale, zero_point }
}

/// The exact range of normalized pixels over all channels,
/// `(0 − mean) / std ..= (1 − mean) / std`.
pub fn input_range(normalization: &Normalization) -> Range {
    let mut range = Range { min: 0.0, max: 0.0 };
    for (&mean, &std) in normalization.mean.iter().zip(&normalization.std) {
        range.min = range.min.min(-mean / std);
        range.max = range.max.max((1.0 - mean) / std);
    }
    range
}

/// The input's quantization: that of [`input_range`], so that no pixel is clipped.
pub fn input_quant(normalization: &Normalization) -> Quant {
    activation_quant(input_range(normalization))
}

/// One output channel of a conv or fully connected layer, in integers.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    pub weights: Vec<i8>,
    pub bias: i32,
    pub multiplier: i32,
    pub shift: i8,
    /// The float weight scale chosen.
    pub weight_scale: f64,
}

/// Why a channel has no int8 form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiplierTooLarge {
    /// `in_scale · w_scale / out_scale`, which must be below `2^29` so that its shift,
    /// after rounding, is at most [`SHIFT_MAX`].
    pub real: f64,
}

/// The weight scale one output channel needs on its own: `max|w| / 127`, raised so that
/// `|bias| <= BIAS_LIMIT` in `in_scale · w_scale` units; `0` for an all-zero channel.
pub fn channel_weight_scale(weights: &[f32], bias: f32, in_scale: f32) -> f64 {
    let max_abs = weights.iter().fold(0f64, |m, &w| m.max(f64::from(w).abs()));
    (max_abs / 127.0).max(f64::from(bias).abs() / (f64::from(in_scale) * BIAS_LIMIT))
}

/// Quantizes one output channel: weights to `round(w / w_scale)` with `w_scale` the
/// larger of [`channel_weight_scale`] and `min_weight_scale` (the scale a maxout unit's
/// pieces share, or 0), the bias to `round(b / (in_scale · w_scale))`, and the
/// multiplier of `in_scale · w_scale / out_scale`.
pub fn quantize_channel(
    weights: &[f32],
    bias: f32,
    in_scale: f32,
    out_scale: f32,
    min_weight_scale: f64,
) -> Result<Channel, MultiplierTooLarge> {
    let mut weight_scale = channel_weight_scale(weights, bias, in_scale).max(min_weight_scale);
    let in_scale = f64::from(in_scale);
    let bias = f64::from(bias);
    if weight_scale == 0.0 || !weight_scale.is_finite() {
        // All zero: any scale represents the channel exactly.
        weight_scale = 1.0;
    }
    let q = weights.iter().map(|&w| (f64::from(w) / weight_scale).round().clamp(-127.0, 127.0) as i8).collect();
    let bias_q = (bias / (in_scale * weight_scale)).round() as i32;
    let real = in_scale * weight_scale / f64::from(out_scale);
    // Also catches NaN.
    if real.partial_cmp(&f64::from(1u32 << (SHIFT_MAX - 1))) != Some(std::cmp::Ordering::Less) {
        return Err(MultiplierTooLarge { real });
    }
    let (multiplier, shift) = quantize_multiplier(real);
    Ok(Channel { weights: q, bias: bias_q, multiplier, shift, weight_scale })
}
