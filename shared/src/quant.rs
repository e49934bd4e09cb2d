//! Fixed-point arithmetic of TFLite's int8 scheme.
//!
//! Requantization is TFLite's `MultiplyByQuantizedMultiplier` in its default
//! *double-rounding* form, because that is what TFLite's reference kernels compute and
//! what models exported elsewhere expect:
//!
//! 1. left-shift by `max(shift, 0)`;
//! 2. [`saturating_rounding_doubling_high_mul`]: `(a * b + nudge) / 2^31` with C
//!    truncating division, where the nudge makes it round half *up* (towards +inf);
//! 3. [`rounding_divide_by_pot`] by `max(-shift, 0)`: round half *away from zero*.
//!
//! The single-rounding variant (one rounding of `x * M / 2^(31 - shift)`) is a little
//! more accurate but differs from TFLite on real data, so it is not used. Both roundings
//! together stay within one unit of the exact product `x * M * 2^shift / 2^31`.

use crate::tensor::{I8s, I32s};

/// Smallest normalized quantized multiplier (`0.5` in Q0.31).
pub const MULTIPLIER_MIN: i32 = 1 << 30;
/// Range of a requantization shift (positive: left).
pub const SHIFT_MIN: i8 = -31;
pub const SHIFT_MAX: i8 = 30;

/// `round_half_up(a * b / 2^31)`, saturating the single overflow case
/// `a == b == i32::MIN` (gemmlowp's `SaturatingRoundingDoublingHighMul`).
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // i64 division truncates towards zero, as C's does.
    ((ab + nudge) / (1 << 31)) as i32
}

/// `x / 2^exponent` rounded half away from zero; `exponent <= 31`.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    debug_assert!(exponent <= 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier(x, multiplier, shift)`.
///
/// Precondition (checked when a model is decoded): `x << max(shift, 0)` fits in an
/// `i32` and `shift` is in `SHIFT_MIN..=SHIFT_MAX`.
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x << left, multiplier), right)
}

/// Per-output-channel requantization parameters, borrowed from a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requant<'a> {
    /// Q0.31 multipliers, one per output channel, in `{0} ∪ [2^30, 2^31)`.
    pub multipliers: I32s<'a>,
    /// Exponents, one per output channel, in `SHIFT_MIN..=SHIFT_MAX`.
    pub shifts: I8s<'a>,
}

impl Requant<'_> {
    #[inline(always)]
    pub fn apply(&self, channel: usize, acc: i32) -> i32 {
        multiply_by_quantized_multiplier(acc, self.multipliers.get(channel), i32::from(self.shifts.get(channel)))
    }
}

/// The output clamp of a layer: `[out_zp, 127]` for a fused ReLU, `[-128, 127]` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OutputStage {
    pub zero_point: i32,
    pub min: i32,
    pub max: i32,
}

impl OutputStage {
    /// Adds the zero point to a requantized value and clamps it to `[min, max]`
    /// (`min <= max`, checked on decode).
    #[inline(always)]
    pub fn finish(&self, requantized: i32) -> i8 {
        // Saturating: the requantized value may be near i32::MAX for a huge multiplier.
        // `max(min).min(max)` rather than `clamp`, which would check `min <= max` on every
        // value.
        requantized.saturating_add(self.zero_point).max(self.min).min(self.max) as i8
    }
}

/// Largest `|x - zero_point|` over all `i8` values `x`.
pub fn max_abs_offset(zero_point: i8) -> i64 {
    let zp = i64::from(zero_point);
    (127 - zp).max(zp + 128)
}

/// TFLite's `QuantizeMultiplier`: the Q0.31 multiplier and shift with
/// `real ≈ multiplier * 2^shift / 2^31`. `real` must be finite and non-negative.
///
/// Rounds `frexp`'s fraction half away from zero (`std::round`); a fraction that rounds
/// up to `2^31` is halved and the exponent raised; a shift below -31 gives `(0, 0)`.
#[cfg(feature = "std")]
pub fn quantize_multiplier(real: f64) -> (i32, i8) {
    assert!(real.is_finite() && real >= 0.0, "multiplier {real} must be finite and >= 0");
    if real == 0.0 {
        return (0, 0);
    }
    let (fraction, mut exponent) = frexp(real);
    let mut q = (fraction * (1u64 << 31) as f64).round() as i64;
    if q == 1 << 31 {
        q /= 2;
        exponent += 1;
    }
    if exponent < -31 {
        return (0, 0);
    }
    assert!(exponent <= i32::from(SHIFT_MAX), "multiplier {real} is too large to requantize");
    (q as i32, exponent as i8)
}

/// `real = fraction * 2^exponent` with `fraction` in `[0.5, 1)` (C's `frexp`).
#[cfg(feature = "std")]
fn frexp(real: f64) -> (f64, i32) {
    let mut value = real;
    let mut bias = 0;
    if value.to_bits() >> 52 & 0x7ff == 0 {
        // Subnormal: scale into the normal range first.
        value *= (1u64 << 54) as f64;
        bias = -54;
    }
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, exponent + bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_mbqm(x: i32, multiplier: i32, shift: i32, expected: i32) {
        assert_eq!(
            multiply_by_quantized_multiplier(x, multiplier, shift),
            expected,
            "x={x} M={multiplier} shift={shift}"
        );
    }

    /// Ties and negative values, computed by hand from the definitions.
    #[test]
    fn golden_rounding() {
        let half = 1 << 30; // 0.5
        // SRDHM rounds ties up: 0.5 * 1 -> 1, 0.5 * -1 -> 0 (not -1).
        assert_eq!(saturating_rounding_doubling_high_mul(1, half), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, half), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, half), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(3, half), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // RDBPOT rounds ties away from zero.
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5
        assert_eq!(rounding_divide_by_pot(-5, 2), -1); // -1.25
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        // Double rounding: 0.75 * 3 / 2 = 1.125. SRDHM gives round(2.25) = 2, then 2/2 = 1.
        check_mbqm(3, 3 << 29, -1, 1);
        // x = 7, M = 0.5, shift -2: SRDHM(7, 0.5) = round_up(3.5) = 4; 4 / 4 = 1 (exact 0.875).
        check_mbqm(7, half, -2, 1);
        // Negative tie that the two roundings resolve differently from single rounding:
        // -7 * 0.5 = -3.5 -> -3 (ties up), then -3 / 4 = -0.75 -> -1.
        check_mbqm(-7, half, -2, -1);
        // -5 * 0.5 = -2.5 -> -2 (ties up), then -2 / 4 = -0.5 -> -1 (away from zero).
        check_mbqm(-5, half, -2, -1);
        check_mbqm(-3, half, -1, -1);
        // Left shift: 3 * 2 * 0.75 = 4.5 -> 5 (tie up).
        check_mbqm(3, 3 << 29, 1, 5);
        // -3 * 2 * 0.75 = -4.5 -> -4 (tie up, towards +inf).
        check_mbqm(-3, 3 << 29, 1, -4);
        check_mbqm(12345, 0, 0, 0);
    }

    #[test]
    fn quantize_multiplier_matches_frexp() {
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(0.75), (3 << 29, 0));
        // A fraction that rounds up to 2^31 is renormalized.
        assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
        // 1/255 = 0.50196... * 2^-7; 0.50196... * 2^31 = 1077952576.25.
        assert_eq!(quantize_multiplier(1.0 / 255.0), (1_077_952_576, -7));
        // Below 2^-32 the shift would pass -31: TFLite gives zero.
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
        // Subnormals and tiny values underflow to zero.
        assert_eq!(quantize_multiplier(f64::MIN_POSITIVE / 4.0), (0, 0));
    }
}
