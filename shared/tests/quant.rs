//! Properties of the fixed-point requantization over the full ranges of its inputs.

mod common;

use common::{requantize_exact, requantize_real};
use fitnets_shared::quant::{
    multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};
use proptest::prelude::*;

/// Normalized multipliers and zero; shifts over TFLite's whole range.
fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), Just(1 << 30), Just(i32::MAX), (1i32 << 30)..=i32::MAX]
}

proptest! {
    #![proptest_config(common::config(10))]

    #[test]
    fn srdhm_rounds_half_up(a in any::<i32>(), b in any::<i32>()) {
        let got = saturating_rounding_doubling_high_mul(a, b);
        let exact = (i128::from(a) * i128::from(b) + (1 << 30)).div_euclid(1 << 31);
        prop_assert_eq!(i128::from(got), exact.min(i128::from(i32::MAX)));
    }

    #[test]
    fn rdbpot_rounds_half_away(x in any::<i32>(), exponent in 0u32..=31) {
        let got = rounding_divide_by_pot(x, exponent);
        prop_assert_eq!(i128::from(got), common::round_half_away(i128::from(x), 1 << exponent));
    }

    #[test]
    fn requantization_is_exact_and_within_one_lsb(
        raw in any::<i32>(),
        multiplier in multiplier(),
        shift in -31i32..=30,
    ) {
        // The decoder guarantees that x << max(shift, 0) fits: draw x accordingly.
        let left = shift.max(0);
        let x = raw >> left;
        let got = multiply_by_quantized_multiplier(x, multiplier, shift);
        prop_assert_eq!(got, requantize_exact(x, multiplier, shift));
        let real = requantize_real(x, multiplier, shift);
        prop_assert!((f64::from(got) - real).abs() <= 1.0, "got {} real {}", got, real);
    }

    #[test]
    fn quantized_multiplier_represents_the_real(real in 1e-9f64..1e9) {
        let (m, s) = quantize_multiplier(real);
        if real < 2f64.powi(-32) {
            prop_assert_eq!((m, s), (0, 0));
        } else {
            prop_assert!(m >= 1 << 30);
            let represented = f64::from(m) * 2f64.powi(i32::from(s)) / 2f64.powi(31);
            prop_assert!((represented - real).abs() <= real * 2f64.powi(-31), "{} vs {}", represented, real);
        }
    }
}
