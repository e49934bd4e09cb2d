//! A linear model of the instructions one inference executes on a core, from the
//! model's shape alone: what `fitnets fit` prices a student with before it trains.
//!
//! Each part of an inference (the input's pixel table, every step of [`crate::plan`],
//! the final argmax, and the glue between steps) contributes a row of [`Features`] in
//! its own block of columns; the instructions are the dot product of the features and
//! one coefficient per column. The model is linear, so the whole inference's features
//! are the sum of its parts' ([`features`]) and its instructions one dot product
//! ([`Coefficients::instructions`]).
//!
//! The coefficients of each core are fitted by `cargo xtask calibrate` on exact
//! instruction counts of random models measured under QEMU, one row per part, and
//! written with their error on models held out of the fit (`firmware/memory/cost.txt`,
//! parsed by [`Coefficients::find`]).
//!
//! Every feature is a count one of the kernels' loops runs over (pixels, window values
//! filled by each of the three fill paths, runs of the inner dot product, channels,
//! requantizations, output values, steps: see [`name`]), so a model's counts and its
//! prediction grow together. Nothing here depends on weight values: a model exported
//! with shared unit scales (one requantization per maxout unit) is priced as one with
//! per-channel scales, a little above what it runs.

use crate::format::{DecodeError, Model};
use crate::ops::{Conv2d, Op};
use crate::plan::{self, Step, StepOp};

/// Columns of [`Features`].
pub const FEATURES: usize = 2 + 2 * CONV_FEATURES + 4 + 2 + 2 + 2;

/// Columns of a conv block (one for unpooled steps, one for pooled steps).
const CONV_FEATURES: usize = 15;

/// First column of each block.
const INPUT: usize = 0;
const CONV: usize = 2;
const POOLED: usize = CONV + CONV_FEATURES;
const DENSE: usize = POOLED + CONV_FEATURES;
const OTHER: usize = DENSE + 4;
const ARGMAX: usize = OTHER + 2;
const GLUE: usize = ARGMAX + 2;

/// What each column of a conv block counts. Filling a pixel's column takes one of three
/// ways: input channels a multiple of 4 unpack a kernel row at a time, a grayscale input
/// value by value along whole rows, any other value by value and tap by tap; windows
/// at the border fill zeros. The dot products run over chunks of [`LANES`] pixels (a
/// pooled step: its pool windows) in runs of 4 window values; requantization is per
/// conv channel and pixel, the output stage per unit and pixel.
const CONV_NAMES: [&str; CONV_FEATURES] = [
    "pixels",
    "pixels x kernel rows (aligned channels)",
    "pixels x window runs (aligned channels)",
    "pixels x window values (grayscale)",
    "pixels x window values (other)",
    "pixels x taps (other)",
    "border pixels x window values",
    "chunks x channels x window runs",
    "chunks x channels",
    "pixels x channels",
    "pixels x units",
    "output values",
    "channels x window runs",
    "channels",
    "steps",
];

/// Pixels per chunk of the conv kernels.
const LANES: usize = 4;

/// The name of column `i`, for tables and messages.
pub fn name(i: usize) -> &'static str {
    const OTHERS: [&str; 12] = [
        "input values",
        "input",
        "dense MACs",
        "dense padded MACs",
        "dense outputs",
        "dense steps",
        "other step values",
        "other steps",
        "argmax classes",
        "argmax",
        "glue steps",
        "glue",
    ];
    match i {
        INPUT..CONV => OTHERS[i],
        CONV..POOLED => CONV_NAMES[i - CONV],
        POOLED..DENSE => CONV_NAMES[i - POOLED],
        _ => OTHERS.get(i - DENSE + 2).copied().unwrap_or("?"),
    }
}

/// The block of column `i`: `conv`, `pooled conv` or `other`.
pub fn block(i: usize) -> &'static str {
    match i {
        CONV..POOLED => "conv",
        POOLED..DENSE => "pooled conv",
        _ => "",
    }
}

/// Counts of one part of an inference, or the sum over parts (see the module docs).
pub type Features = [f64; FEATURES];

/// Features of the input step: one table lookup per input value.
pub fn input_features(model: &Model<'_>) -> Features {
    let mut f = [0.0; FEATURES];
    f[INPUT] = model.input_shape().len() as f64;
    f[INPUT + 1] = 1.0;
    f
}

/// Features of the argmax over the classes.
pub fn argmax_features(model: &Model<'_>) -> Features {
    let mut f = [0.0; FEATURES];
    f[ARGMAX] = f64::from(model.classes());
    f[ARGMAX + 1] = 1.0;
    f
}

/// Features of the glue: the executor's work per step (counted steps, as the bench's
/// regions count them) and once.
pub fn glue_features(steps: usize) -> Features {
    let mut f = [0.0; FEATURES];
    f[GLUE] = steps as f64;
    f[GLUE + 1] = 1.0;
    f
}

/// Features of one step; a flatten (which moves nothing) has none.
pub fn step_features(step: &Step<'_>) -> Features {
    let mut f = [0.0; FEATURES];
    if step.is_alias() {
        return f;
    }
    match step.op {
        StepOp::Single(Op::Conv2d(conv)) => conv_features(&mut f[CONV..POOLED], step, &conv, 1, 1),
        StepOp::ConvMaxout(conv, pieces) => conv_features(&mut f[CONV..POOLED], step, &conv, pieces, 1),
        StepOp::ConvMaxoutPool(conv, pieces, pool) => {
            let area = usize::from(pool.kernel_h) * usize::from(pool.kernel_w);
            conv_features(&mut f[POOLED..DENSE], step, &conv, pieces, area)
        }
        StepOp::Single(Op::FullyConnected(fc)) | StepOp::FullyConnectedMaxout(fc, _) => {
            let outputs = fc.bias.len();
            let inputs = fc.weights.len() / outputs.max(1);
            f[DENSE] = fc.weights.len() as f64;
            f[DENSE + 1] = (inputs.div_ceil(4) * 4 * outputs) as f64;
            f[DENSE + 2] = outputs as f64;
            f[DENSE + 3] = 1.0;
        }
        StepOp::Single(_) => {
            f[OTHER] = (step.input.len() + step.output.len()) as f64;
            f[OTHER + 1] = 1.0;
        }
    }
    f
}

/// A conv block's columns for a step whose conv has `pieces` per unit and whose pool
/// windows hold `pool_area` conv pixels (1: unpooled).
fn conv_features(f: &mut [f64], step: &Step<'_>, conv: &Conv2d<'_>, pieces: u16, pool_area: usize) {
    let (h, w) = conv.window.output_size(step.input.height, step.input.width).unwrap_or((0, 0));
    let (h, w) = (usize::from(h), usize::from(w));
    let pixels = h * w;
    let channels = conv.bias.len();
    let units = channels / usize::from(pieces).max(1);
    let window = conv.weights.len() / channels.max(1);
    let runs = window.div_ceil(4);
    let taps = usize::from(conv.window.kernel_h) * usize::from(conv.window.kernel_w);
    let input_channels = usize::from(step.input.channels);
    let chunks = if pool_area > 1 { pixels / pool_area * pool_area.div_ceil(LANES) } else { pixels.div_ceil(LANES) };
    let counts: [usize; CONV_FEATURES] = [
        pixels,
        if input_channels.is_multiple_of(4) { pixels * usize::from(conv.window.kernel_h) } else { 0 },
        if input_channels.is_multiple_of(4) { pixels * runs } else { 0 },
        if input_channels == 1 { pixels * window } else { 0 },
        if input_channels == 1 || input_channels.is_multiple_of(4) { 0 } else { pixels * window },
        if input_channels == 1 || input_channels.is_multiple_of(4) { 0 } else { pixels * taps },
        2 * (h + w) * window,
        chunks * channels * runs,
        chunks * channels,
        pixels * channels,
        pixels * units,
        step.output.len(),
        channels * runs,
        channels,
        1,
    ];
    for (slot, count) in f.iter_mut().zip(counts) {
        *slot = count as f64;
    }
}

/// The features of a whole inference of `model`: the sum of its parts'.
pub fn features(model: &Model<'_>) -> Result<Features, DecodeError> {
    let mut total = input_features(model);
    let mut counted = 0;
    for step in plan::steps(model) {
        let step = step?;
        if !step.is_alias() {
            counted += 1;
        }
        add(&mut total, &step_features(&step));
    }
    add(&mut total, &argmax_features(model));
    add(&mut total, &glue_features(counted));
    Ok(total)
}

fn add(total: &mut Features, part: &Features) {
    for (t, p) in total.iter_mut().zip(part) {
        *t += p;
    }
}

/// One core's fitted coefficients and what the fit measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients<'a> {
    /// The core, as `firmware/memory/cycles.txt` names it (`cortex-m4`, `cortex-m0plus`).
    pub core: &'a str,
    /// Instructions per unit of each feature.
    pub weights: Features,
    /// Estimated cycles per instruction over the calibration models.
    pub cycles_per_instruction: f64,
    /// Models fitted on, and held out of the fit.
    pub fitted: u32,
    pub held_out: u32,
    /// Mean and largest relative error of whole-inference instructions on the held-out
    /// models.
    pub mean_error: f64,
    pub max_error: f64,
    /// Mean and largest relative error of the estimated cycles (instructions times
    /// [`Coefficients::cycles_per_instruction`]) against each held-out model's own
    /// cycle estimate: how far a time from this row may be off.
    pub cycles_mean_error: f64,
    pub cycles_max_error: f64,
}

/// Why a cost table does not parse: the line (1-based) and what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub problem: &'static str,
}

impl core::fmt::Display for TableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Values on a table row after the core's name, before the weights.
const HEAD: usize = 7;

impl<'a> Coefficients<'a> {
    /// Predicted instructions of a part or whole inference with `features`.
    pub fn instructions(&self, features: &Features) -> f64 {
        self.weights.iter().zip(features).map(|(w, f)| w * f).sum::<f64>().max(0.0)
    }

    /// The row of `core` in `table`, `None` when it has none.
    pub fn find(table: &'a str, core: &str) -> Result<Option<Coefficients<'a>>, TableError> {
        for (n, line) in table.lines().enumerate() {
            let row = Self::parse_row(line).map_err(|problem| TableError { line: n + 1, problem })?;
            if let Some(row) = row.filter(|r| r.core == core) {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// One line of the table: `core cycles/instruction fitted held-out mean-error max-error cycles-mean-error
    /// cycles-max-error`, then one weight
    /// per feature;
    /// `None` for a comment or blank line.
    pub fn parse_row(line: &'a str) -> Result<Option<Coefficients<'a>>, &'static str> {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            return Ok(None);
        }
        let mut fields = line.split_whitespace();
        let core = fields.next().ok_or("no core")?;
        let mut numbers = [0.0; HEAD + FEATURES];
        for slot in numbers.iter_mut() {
            let field = fields.next().ok_or("too few values (the core, 7 figures, one weight per feature)")?;
            *slot = field.parse::<f64>().map_err(|_| "a value is not a number")?;
            if !slot.is_finite() {
                return Err("a value is not finite");
            }
        }
        if fields.next().is_some() {
            return Err("too many values (the core, 7 figures, one weight per feature)");
        }
        let count = |x: f64| {
            if (0.0..=f64::from(u32::MAX)).contains(&x) && x == f64::from(x as u32) {
                Ok(x as u32)
            } else {
                Err("a model count is not a whole number")
            }
        };
        let mut weights = [0.0; FEATURES];
        weights.copy_from_slice(&numbers[HEAD..]);
        let row = Coefficients {
            core,
            cycles_per_instruction: numbers[0],
            fitted: count(numbers[1])?,
            held_out: count(numbers[2])?,
            mean_error: numbers[3],
            max_error: numbers[4],
            cycles_mean_error: numbers[5],
            cycles_max_error: numbers[6],
            weights,
        };
        if row.cycles_per_instruction <= 0.0 {
            return Err("cycles per instruction must be positive");
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn rows_parse_and_refuse_what_is_wrong() {
        let weights: std::vec::Vec<std::string::String> = (1..=FEATURES).map(|w| format!("{w}")).collect();
        let weights = weights.join(" ");
        let line = format!("cortex-m4 1.5 30 10 0.01 0.03 0.02 0.05 {weights}");
        let row = Coefficients::parse_row(&line).unwrap().unwrap();
        assert_eq!((row.core, row.fitted, row.held_out), ("cortex-m4", 30, 10));
        assert_eq!((row.cycles_mean_error, row.cycles_max_error), (0.02, 0.05));
        assert_eq!(row.weights[FEATURES - 1], FEATURES as f64);
        let mut f = [0.0; FEATURES];
        f[0] = 2.0;
        f[FEATURES - 1] = 1.0;
        assert_eq!(row.instructions(&f), 2.0 + FEATURES as f64);
        assert_eq!(Coefficients::parse_row("  # a comment").unwrap(), None);
        assert!(Coefficients::parse_row("cortex-m4 1.5 30").is_err());
        assert!(Coefficients::parse_row(&format!("{line} 19")).is_err());
        assert!(Coefficients::parse_row(&line.replace(" 30 ", " NaN ")).is_err());
        assert!(Coefficients::parse_row(&line.replace(" 30 ", " 3.5 ")).is_err());
        assert!(Coefficients::parse_row(&line.replace("cortex-m4 1.5", "cortex-m4 0")).is_err());
        let table = format!("# header\n{line}\n");
        assert_eq!(Coefficients::find(&table, "cortex-m4").unwrap().map(|r| r.held_out), Some(10));
        assert_eq!(Coefficients::find(&table, "cortex-m0plus").unwrap(), None);
        assert_eq!(Coefficients::find("x 1\n", "x").unwrap_err().line, 1);
    }
}
