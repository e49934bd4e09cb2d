//! Calibration: the float range of every quantized activation tensor, measured by
//! running the [`FloatModel`] on training images.
//!
//! The calibrated tensors are the outputs of the affine layers *after* their maxout or
//! ReLU. Maxout and max pooling keep their input's quantization, and clamping commutes
//! with taking a maximum, so quantizing a conv's pre-maxout outputs with the range of its
//! post-maxout outputs loses nothing the unit keeps: the wasted range of pieces that
//! never win is not paid for.
//!
//! - [`Calibration::MinMax`]: the smallest and largest value seen.
//! - [`Calibration::Percentile`]: the `p`-th percentile from each end, which ignores
//!   rare outliers.
//! - [`Calibration::Mse`]: the range whose int8 grid gives the least mean squared error
//!   over the values seen: rounding error `scale² / 12` inside it, clipping error outside.
//!
//! The two histogram methods take a second pass over the images, with [`BINS`] bins
//! spanning the min/max range of each tensor. Images are processed in parallel.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context as _, bail, ensure};
use rayon::prelude::*;

use super::float::{FloatModel, normalize};
use super::scheme::{Range, activation_quant};
use crate::data::Normalization;

/// Histogram bins per tensor for percentile and MSE calibration.
pub const BINS: usize = 2048;

/// The default percentile of `percentile` without a value.
pub const DEFAULT_PERCENTILE: f64 = 99.99;

/// How activation ranges are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Calibration {
    MinMax,
    /// Percentile in `(50, 100]`, applied at both ends.
    Percentile(f64),
    Mse,
}

impl FromStr for Calibration {
    type Err = anyhow::Error;

    /// `minmax`, `percentile`, `percentile:P` or `mse`.
    fn from_str(s: &str) -> anyhow::Result<Calibration> {
        match s.split_once(':') {
            None if s == "minmax" => Ok(Calibration::MinMax),
            None if s == "mse" => Ok(Calibration::Mse),
            None if s == "percentile" => Ok(Calibration::Percentile(DEFAULT_PERCENTILE)),
            Some(("percentile", p)) => {
                let p: f64 = p.parse().with_context(|| format!("`{p}` is not a percentile"))?;
                ensure!(p > 50.0 && p <= 100.0, "percentile {p} must be in (50, 100]");
                Ok(Calibration::Percentile(p))
            }
            _ => bail!("unknown calibration `{s}`: use minmax, percentile[:P] or mse"),
        }
    }
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Calibration::MinMax => write!(f, "minmax"),
            Calibration::Percentile(p) => write!(f, "percentile:{p}"),
            Calibration::Mse => write!(f, "mse"),
        }
    }
}

/// The range of every affine layer's output (in the order of [`FloatModel::affines`])
/// over `images` (raw NHWC pixels, `images.len()` a multiple of the image size).
pub fn calibrate(
    model: &FloatModel,
    normalization: &Normalization,
    images: &[u8],
    method: Calibration,
) -> anyhow::Result<Vec<Range>> {
    let [h, w, c] = model.input();
    ensure!(
        normalization.mean.len() == c,
        "the normalization has {} channels, the model {c}",
        normalization.mean.len()
    );
    ensure!(
        !images.is_empty() && images.len().is_multiple_of(h * w * c),
        "no whole {h}x{w}x{c} images to calibrate on"
    );
    let tensors = model.affines().count();
    let forward = |image: &[u8], visit: &mut dyn FnMut(usize, &[f32])| {
        let mut x = vec![0f32; image.len()];
        normalize(image, normalization, &mut x);
        model.forward(&x, visit);
    };
    let extremes = images
        .par_chunks(h * w * c)
        .fold(
            || vec![Range::EMPTY; tensors],
            |mut acc, image| {
                forward(image, &mut |i, y| acc[i].add(y));
                acc
            },
        )
        .reduce(|| vec![Range::EMPTY; tensors], |a, b| a.iter().zip(b).map(|(a, b)| a.union(b)).collect());
    ensure!(extremes.iter().all(|r| r.min.is_finite() && r.max.is_finite()), "calibration saw a non-finite activation");
    if method == Calibration::MinMax {
        return Ok(extremes);
    }
    let empty = || extremes.iter().map(|&r| Histogram::new(r)).collect::<Vec<_>>();
    let histograms = images
        .par_chunks(h * w * c)
        .fold(empty, |mut acc, image| {
            forward(image, &mut |i, y| acc[i].add(y));
            acc
        })
        .reduce(empty, |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| a.merge(b));
            a
        });
    Ok(histograms
        .iter()
        .map(|hist| match method {
            Calibration::Percentile(p) => hist.percentile_range(p),
            _ => hist.mse_range(),
        })
        .collect())
}

/// Counts of values in [`BINS`] equal bins over `range`.
#[derive(Clone, Debug)]
pub struct Histogram {
    range: Range,
    counts: Vec<u64>,
    /// Values exactly zero (a ReLU's output): on the int8 grid, so never rounded.
    zeros: u64,
}

impl Histogram {
    pub fn new(range: Range) -> Histogram {
        Histogram { range, counts: vec![0; BINS], zeros: 0 }
    }

    fn width(&self) -> f64 {
        (f64::from(self.range.max) - f64::from(self.range.min)) / BINS as f64
    }

    pub fn add(&mut self, values: &[f32]) {
        let width = self.width();
        for &v in values {
            self.zeros += u64::from(v == 0.0);
            let bin = if width > 0.0 { ((f64::from(v) - f64::from(self.range.min)) / width) as usize } else { 0 };
            self.counts[bin.min(BINS - 1)] += 1;
        }
    }

    fn merge(&mut self, other: &Histogram) {
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        self.zeros += other.zeros;
    }

    fn edge(&self, bin: usize) -> f32 {
        (f64::from(self.range.min) + bin as f64 * self.width()) as f32
    }

    /// From the lower edge of the bin holding the `(100 - p)`-th percentile to the upper
    /// edge of the bin holding the `p`-th.
    pub fn percentile_range(&self, p: f64) -> Range {
        let total: u64 = self.counts.iter().sum();
        let tail = ((1.0 - p / 100.0) * total as f64).floor() as u64;
        let (mut below, mut lo) = (0u64, 0);
        while lo < BINS - 1 && below + self.counts[lo] <= tail {
            below += self.counts[lo];
            lo += 1;
        }
        let (mut above, mut hi) = (0u64, BINS - 1);
        while hi > lo && above + self.counts[hi] <= tail {
            above += self.counts[hi];
            hi -= 1;
        }
        Range { min: self.edge(lo), max: self.edge(hi + 1).min(self.range.max) }
    }

    /// The range, shrunk from each end in 64 steps, whose int8 quantization has the least
    /// expected squared error over the histogram: values inside it are taken to be
    /// uniform within their bin, so they err by `scale² / 12` on average; values outside
    /// err by their distance to the clipped end.
    pub fn mse_range(&self) -> Range {
        const STEPS: usize = 64;
        let (min, max) = (f64::from(self.range.min), f64::from(self.range.max));
        let width = self.width();
        let centres: Vec<f64> = (0..BINS).map(|b| min + (b as f64 + 0.5) * width).collect();
        let mut best = (f64::INFINITY, self.range);
        for i in 0..STEPS {
            for j in 0..STEPS {
                let lo = (min.min(0.0) * (1.0 - i as f64 / STEPS as f64)) as f32;
                let hi = (max.max(0.0) * (1.0 - j as f64 / STEPS as f64)) as f32;
                let quant = activation_quant(Range { min: lo, max: hi });
                let scale = f64::from(quant.scale);
                let zp = f64::from(quant.zero_point);
                let (low, high) = ((-128.0 - zp) * scale, (127.0 - zp) * scale);
                // Zero is exactly representable: exact zeros have no rounding error.
                let mut error = -(self.zeros as f64) * scale * scale / 12.0;
                for (&count, &v) in self.counts.iter().zip(&centres) {
                    if count == 0 {
                        continue;
                    }
                    let e = if v < low {
                        (low - v).powi(2)
                    } else if v > high {
                        (v - high).powi(2)
                    } else {
                        scale * scale / 12.0
                    };
                    error += count as f64 * e;
                }
                if error < best.0 {
                    best = (error, Range { min: lo, max: hi });
                }
                if max <= 0.0 {
                    break;
                }
            }
            if min >= 0.0 {
                break;
            }
        }
        best.1
    }
}
