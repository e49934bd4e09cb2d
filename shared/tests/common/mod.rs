//! Independent formulations and generators shared by the property tests.
//!
//! The "independent" arithmetic here is written from the definitions (exact rationals
//! in i128, explicit padding), not from the kernels' code, so that a kernel agreeing
//! with it is evidence and not a tautology.

#![allow(dead_code)]

use fitnets_shared::quant::{OutputStage, Requant};
use fitnets_shared::tensor::{I8s, I32s};

/// Cases per property; `PROPTEST_CASES` overrides it.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000)
}

/// `cases()` cases, allowing as many rejected draws (cases whose accumulator bound the
/// decoder would refuse are skipped, not run).
pub fn config(factor: u32) -> proptest::prelude::ProptestConfig {
    let cases = cases() * factor;
    proptest::prelude::ProptestConfig { cases, max_global_rejects: cases, ..Default::default() }
}

/// `floor(a / b)` for `b > 0`.
pub fn floor_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

/// Round half away from zero of `a / b`, `b > 0`.
pub fn round_half_away(a: i128, b: i128) -> i128 {
    let q = (2 * a.abs() + b) / (2 * b);
    if a < 0 { -q } else { q }
}

/// The double-rounding requantization from its definition: `x * 2^left`, times
/// `M / 2^31` rounded half towards +inf, then divided by `2^right` rounded half away
/// from zero.
pub fn requantize_exact(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    let scaled = i128::from(x) << left;
    let high = floor_div(scaled * i128::from(multiplier) + (1 << 30), 1 << 31);
    round_half_away(high, 1 << right) as i32
}

/// The exact real value `x * M * 2^shift / 2^31`.
pub fn requantize_real(x: i32, multiplier: i32, shift: i32) -> f64 {
    f64::from(x) * f64::from(multiplier) * 2f64.powi(shift) / 2f64.powi(31)
}

/// A small deterministic generator for bulk tensor contents (proptest draws the seed
/// and the shapes, so failures still shrink on the parameters that matter).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 16
    }

    pub fn i8(&mut self) -> i8 {
        self.next() as u8 as i8
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }

    pub fn weights(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.range(-127, 127) as i8).collect()
    }
}

/// Owned requantization parameters that hand out borrowed views.
pub struct OwnedRequant {
    pub multipliers: Vec<u8>,
    pub shifts: Vec<u8>,
}

impl OwnedRequant {
    pub fn new(pairs: &[(i32, i8)]) -> OwnedRequant {
        OwnedRequant {
            multipliers: pairs.iter().flat_map(|p| p.0.to_le_bytes()).collect(),
            shifts: pairs.iter().map(|p| p.1 as u8).collect(),
        }
    }

    pub fn view(&self) -> Requant<'_> {
        Requant { multipliers: I32s(&self.multipliers), shifts: I8s(&self.shifts) }
    }
}

pub fn i32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn i8_bytes(values: &[i8]) -> Vec<u8> {
    values.iter().map(|&v| v as u8).collect()
}

pub fn stage(zero_point: i8, relu: bool) -> OutputStage {
    let zero_point = i32::from(zero_point);
    OutputStage { zero_point, min: if relu { zero_point } else { -128 }, max: 127 }
}

/// Independent finish: requantize exactly, add the zero point, clamp.
pub fn finish_exact(acc: i64, multiplier: i32, shift: i32, stage: OutputStage) -> i8 {
    let acc = i32::try_from(acc).expect("test keeps accumulators in i32");
    (i64::from(requantize_exact(acc, multiplier, shift)) + i64::from(stage.zero_point))
        .clamp(i64::from(stage.min), i64::from(stage.max)) as i8
}

/// The real-valued output before rounding, clamped to the stage's range.
pub fn finish_real(acc: i64, real_multiplier: f64, stage: OutputStage) -> f64 {
    (acc as f64 * real_multiplier + f64::from(stage.zero_point)).clamp(f64::from(stage.min), f64::from(stage.max))
}
