//! Requantization with per-channel constants decoded once per step.
//!
//! [`Channel`] holds what [`crate::quant::Requant::apply`] reads from the blob on every
//! call (little-endian bytes, shift signs), ready for use, with the channel's bias
//! (adjusted by the column layout where it must be): the kernel builds one per channel in its
//! scratch before the first pixel, then [`requantize`] costs a multiply and a few shifts.
//!
//! Bit-exact with [`crate::quant::multiply_by_quantized_multiplier`]: for a multiplier
//! `m` in `{0} ∪ [2^30, 2^31)` (checked on decode, so `x * m` never reaches the one
//! saturating case) TFLite's `SaturatingRoundingDoublingHighMul`, `(x*m + nudge) / 2^31`
//! truncated with `nudge = 2^30` or `1 - 2^30` by the product's sign, equals
//! `floor((x*m + 2^30) / 2^31)` for both signs: for `x*m < 0`, truncation rounds up,
//! `ceil((x*m + 1 - 2^30) / 2^31) = floor((x*m + 1 - 2^30 + 2^31 - 1) / 2^31)`. One
//! 64-bit multiply-add and a shift, no branch.

/// One conv channel's constants: `[bias, multiplier, left shift, right shift, 2^right - 1,
/// 2^(right - 1) - 1 (0 for right = 0), doubled multiplier, left shift for the doubled
/// multiplier]`. The last two serve the DSP cores' `SMMLAR` form of the multiply
/// ([`requantize`]): the multiplier times 2 wrapped to an `i32`, and the left shift, or
/// 32 for a zero multiplier (the shifted accumulator is then 0, and so is the product).
pub type Channel = [i32; 8];

/// Words of a [`Channel`].
pub const CHANNEL_WORDS: usize = 8;

/// The constants of a channel with this bias, Q0.31 multiplier and shift.
#[inline]
pub fn channel(bias: i32, multiplier: i32, shift: i8) -> Channel {
    let shift = i32::from(shift);
    let (left, right) = (shift.max(0), (-shift).clamp(0, 31));
    let mask = ((1u32 << right) - 1) as i32;
    let doubled = (multiplier as u32).wrapping_shl(1) as i32;
    let doubled_left = if multiplier == 0 { 32 } else { left };
    [bias, multiplier, left, right, mask, mask >> 1, doubled, doubled_left]
}

/// `multiply_by_quantized_multiplier(acc, multiplier, shift)` of [`channel`]'s inputs.
///
/// Preconditions (the decoder's): `acc << left` fits in an `i32`, `multiplier` is in
/// `{0} ∪ [2^30, 2^31)`, `-31 <= shift`.
#[cfg(not(fitnets_dsp))]
#[inline(always)]
pub fn requantize(acc: i32, c: &Channel) -> i32 {
    let [_, multiplier, left, right, mask, half, ..] = *c;
    let x = acc << (left as u32 & 31);
    // ARMv6-M has no 32x32→64 multiply: four 16-bit products instead of a library call.
    #[cfg(target_arch = "arm")]
    let high = high_mul_round(x, multiplier);
    #[cfg(not(target_arch = "arm"))]
    let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
    // Rounding division by 2^right, ties away from zero.
    #[cfg(not(fitnets_broken))]
    let threshold = half + i32::from(high < 0);
    // The bug on purpose (`build.rs`): negative ties round towards zero.
    #[cfg(fitnets_broken)]
    let threshold = half;
    (high >> (right as u32 & 31)) + i32::from(high & mask > threshold)
}

/// The rounding threshold, `half + (h < 0)`.
#[cfg(all(fitnets_dsp, not(fitnets_broken)))]
macro_rules! threshold {
    () => {
        "add {t}, {half}, {h}, lsr #31"
    };
}

/// The bug on purpose (`build.rs`): negative ties round towards zero.
#[cfg(all(fitnets_dsp, fitnets_broken))]
macro_rules! threshold {
    () => {
        "mov {t}, {half}"
    };
}

/// [`requantize`] in 8 instructions on a DSP core. With `x = acc << left` and the
/// doubled multiplier `d = 2m - 2^32` (as an `i32`), `SMMLAR h, x, d, x` is
/// `(x·2^32 + x·d + 2^31) >> 32 = (x·2m + 2^31) >> 32 = floor((x·m + 2^30) / 2^31)`, the
/// rounded high half above, exactly: the 64-bit sum `x·2m + 2^31` cannot overflow
/// (`|x| <= 2^31`, `2m < 2^32`), and bits 63..32 of the wrapped sum are those of the
/// true one. A zero multiplier has left shift 32 in the table: `LSL` by 32 gives
/// `x = 0`, and `h = 0` as the reference's. Then the rounding division as above:
/// `(h >> right) + ((h & mask) > half + (h < 0))`.
#[cfg(fitnets_dsp)]
#[inline(always)]
pub fn requantize(acc: i32, c: &Channel) -> i32 {
    let [_, _, _, right, mask, half, doubled, left] = *c;
    let high: i32;
    // SAFETY: register arithmetic only; no memory, no stack.
    unsafe {
        core::arch::asm!(
            "lsl {x}, {acc}, {left}",
            "smmlar {h}, {x}, {doubled}, {x}",
            "and {x}, {h}, {mask}",
            threshold!(),
            "asr {h}, {h}, {right}",
            "cmp {x}, {t}",
            "it gt",
            "addgt {h}, {h}, #1",
            acc = in(reg) acc,
            left = in(reg) left,
            doubled = in(reg) doubled,
            mask = in(reg) mask,
            half = in(reg) half,
            right = in(reg) right,
            x = out(reg) _,
            t = out(reg) _,
            h = out(reg) high,
            options(pure, nomem, nostack),
        );
    }
    high
}

/// `((x * m + 2^30) >> 31)` for `m` in `{0} ∪ [2^30, 2^31)`, the high half of
/// TFLite's doubling multiply, with 32-bit multiplies only (ARMv6-M has no
/// 32x32→64 one; the compiler would call a 64-bit library multiply). With
/// `x = xh·2^16 + xl` and `m = mh·2^16 + ml` (`xl`, `ml` unsigned 16-bit):
/// `x·m = H·2^32 + t·2^16 + (xl·ml mod 2^16)` where `H = xh·mh + (xh·ml >> 16) +
/// (xl·mh >> 16)` and `t = (xl·ml >> 16) + (xh·ml mod 2^16) + (xl·mh mod 2^16)`, so
/// the rounded `x·m / 2^31` is `2H + ((t + 2^14) >> 15)`: the dropped low 16 bits are
/// under one unit of `t` and cannot carry past the shift. Sums wrap; the result, which
/// fits an `i32` since `|x·m / 2^31| <= |x|`, is exact.
#[inline(always)]
#[cfg_attr(any(not(target_arch = "arm"), fitnets_dsp), allow(dead_code))]
pub(crate) fn high_mul_round(x: i32, m: i32) -> i32 {
    let (xh, xl) = (x >> 16, x as u32 & 0xFFFF);
    let (mh, ml) = ((m as u32 >> 16) as i32, m as u32 & 0xFFFF);
    let low = xl * ml;
    let cross_h = xh.wrapping_mul(ml as i32);
    let cross_l = (xl * mh as u32) as i32;
    let high = (xh.wrapping_mul(mh)).wrapping_add(cross_h >> 16).wrapping_add(cross_l >> 16);
    let t = (low >> 16) + (cross_h as u32 & 0xFFFF) + (cross_l as u32 & 0xFFFF);
    high.wrapping_mul(2).wrapping_add(((t + (1 << 14)) >> 15) as i32)
}

/// Compares `requantize` with the reference, [`crate::quant::multiply_by_quantized_multiplier`],
/// on the edges (zero, the smallest and largest multipliers, every shift, accumulators at
/// the `i32` limits and around the ties) and on 4,096 pseudo-random cases; returns
/// `(matched, compared)`. The firmware's kernel check runs it on the device, where
/// `requantize` is `asm!` (DSP cores) or 16-bit products (Cortex-M0+); the host's tests
/// run it too.
pub fn requantize_edges() -> (u32, u32) {
    use crate::quant::{MULTIPLIER_MIN, SHIFT_MAX, SHIFT_MIN, multiply_by_quantized_multiplier};
    let (mut matched, mut compared) = (0, 0);
    let mut compare = |acc: i32, m: i32, shift: i8| {
        let left = shift.max(0) as u32;
        // The decoder's precondition: `acc << left` fits.
        if left > 0 && (acc << left) >> left != acc {
            return;
        }
        compared += 1;
        let reference = multiply_by_quantized_multiplier(acc, m, i32::from(shift));
        matched += u32::from(requantize(acc, &channel(0, m, shift)) == reference);
    };
    let multipliers = [0, MULTIPLIER_MIN, MULTIPLIER_MIN + 1, i32::MAX - 1, i32::MAX, 1_518_500_250];
    let accs = [0, 1, -1, 2, -2, 3, -3, 5, -5, 1 << 20, -(1 << 20), i32::MAX, i32::MIN, i32::MIN + 1];
    for &m in &multipliers {
        for shift in SHIFT_MIN..=SHIFT_MAX {
            for &acc in &accs {
                compare(acc, m, shift);
            }
        }
    }
    // xorshift32: the same cases on every target.
    let mut state = 0x9E37_79B9u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..4096 {
        let m = (MULTIPLIER_MIN as u32 | (next() >> 2)) as i32;
        let shift = (next() % 62) as i8 + SHIFT_MIN;
        // Small accumulators as often as large ones.
        let acc = (next() as i32) >> (next() % 32);
        compare(acc >> shift.max(0), m, shift);
    }
    (matched, compared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{MULTIPLIER_MIN, SHIFT_MAX, SHIFT_MIN, multiply_by_quantized_multiplier};
    use proptest::prelude::*;

    fn reference(acc: i32, multiplier: i32, shift: i8) -> i32 {
        multiply_by_quantized_multiplier(acc, multiplier, i32::from(shift))
    }

    #[test]
    fn edges_match_the_reference() {
        let multipliers = [0, MULTIPLIER_MIN, MULTIPLIER_MIN + 1, i32::MAX - 1, i32::MAX, 1_518_500_250];
        for &m in &multipliers {
            for shift in SHIFT_MIN..=SHIFT_MAX {
                let left = shift.max(0) as u32;
                for acc in [0, 1, -1, 2, -2, 3, -3, 1 << 20, -(1 << 20), i32::MAX, i32::MIN, i32::MIN + 1] {
                    // The decoder's precondition: `acc << left` fits.
                    if left > 0 && (acc << left) >> left != acc {
                        continue;
                    }
                    assert_eq!(requantize(acc, &channel(0, m, shift)), reference(acc, m, shift), "{acc} {m} {shift}");
                }
            }
        }
    }

    #[test]
    fn the_device_check_passes_here() {
        let (matched, compared) = requantize_edges();
        assert!(compared > 4000);
        assert_eq!(matched, compared);
    }

    #[test]
    fn ties_round_like_tflite() {
        // x * m / 2^31 = -0.5 exactly: half up, to 0; then -1.5 / 2^1: away from zero.
        assert_eq!(requantize(-1, &channel(0, 1 << 30, 0)), reference(-1, 1 << 30, 0));
        assert_eq!(requantize(-3, &channel(0, 1 << 30, -1)), reference(-3, 1 << 30, -1));
        assert_eq!(requantize(5, &channel(0, 1 << 30, -2)), reference(5, 1 << 30, -2));
    }

    fn wide(x: i32, m: i32) -> i32 {
        ((i64::from(x) * i64::from(m) + (1 << 30)) >> 31) as i32
    }

    #[test]
    fn the_16_bit_products_match_the_64_bit_one_at_the_edges() {
        let xs =
            [0, 1, -1, 0xFFFF, 0x10000, -0x10000, 0x7FFF, -0x8000, i32::MAX, i32::MIN, i32::MIN + 1, 12345, -98765];
        for &m in &[0, MULTIPLIER_MIN, MULTIPLIER_MIN + 1, i32::MAX, i32::MAX - 0xFFFF, 1_518_500_250] {
            for &x in &xs {
                assert_eq!(high_mul_round(x, m), wide(x, m), "{x} {m}");
            }
        }
    }

    proptest! {
        #[test]
        fn the_16_bit_products_match_the_64_bit_one(x in any::<i32>(), m in prop_oneof![Just(0), MULTIPLIER_MIN..=i32::MAX]) {
            prop_assert_eq!(high_mul_round(x, m), wide(x, m));
        }

        #[test]
        fn random_values_match_the_reference(
            acc in any::<i32>(),
            m in prop_oneof![Just(0), MULTIPLIER_MIN..=i32::MAX],
            shift in SHIFT_MIN..=SHIFT_MAX,
        ) {
            let left = shift.max(0) as u32;
            let acc = if left > 0 { acc >> left } else { acc };
            prop_assert_eq!(requantize(acc, &channel(7, m, shift)), reference(acc, m, shift));
        }
    }
}
