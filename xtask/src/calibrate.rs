//! `cargo xtask calibrate [--models N] [--seed S] [--update | --check]`: fits the cost
//! model of `fitnets_shared::cost` on exact instruction counts under QEMU, for every core
//! `fitnets fit` prices students on, and states its error on models held out of the fit.
//!
//! The models are drawn from the family `fitnets fit` searches (maxout conv layers, 3x3
//! padded 1, in three stages separated by 2x2/2 max pooling, then a dense layer; any
//! depth, widths, pieces and split of the layers over the stages), on the two input
//! shapes the data sets have (28x28x1, 32x32x3), with drawn weights: the kernels'
//! instruction counts depend on shapes, not on values. Each is benched as
//! `cargo xtask bench` benches it ([`crate::bench::measure`]). Every part of every fitted
//! model (input, each step, argmax, the glue between them) is one row of the least
//! squares fit; the held-out models (every fourth) are predicted whole, and their
//! relative errors are what the table records. Cycles per instruction are the mean of
//! the cycle estimates of `xtask/src/cycles.rs` over the fitted models.
//!
//! `--update` writes `firmware/memory/cost.txt`, which the host embeds; `--check` fails
//! when a recorded row predicts the measured models worse than it claims.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};
use fitnets_shared::cost::{self, Coefficients, FEATURES, Features};
use fitnets_shared::format::encode::encode;
use fitnets_shared::ops::Window;
use fitnets_shared::plan;
use fitnets_shared::{Model, Shape};
use fitnets_tests::Arch;

use crate::bench;
use crate::boards::{self, Board};
use crate::tools::root;
use fitnets_tests::SplitMix;

/// Arguments of `cargo xtask calibrate`.
#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Random models measured on each core.
    #[arg(long, default_value_t = 48, value_name = "N")]
    pub models: usize,
    /// The seed of the drawn models.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write firmware/memory/cost.txt.
    #[arg(long, conflicts_with = "check")]
    pub update: bool,
    /// Fail when the table predicts the models worse than it records.
    #[arg(long)]
    pub check: bool,
}

/// The table the host embeds, relative to `firmware/`.
pub const COST_TABLE: &str = "memory/cost.txt";

/// The emulated board each priced core is measured on.
const CORES: [(&str, &str); 2] = [("cortex-m4", "qemu-m4"), ("cortex-m0plus", "qemu-m0plus")];

/// Every `HELD_OUT`-th model is left out of the fit and predicted.
const HELD_OUT: usize = 4;

/// The largest model drawn, in multiply-accumulates (the M0+ runs it in a few seconds).
const MAX_MACS: u64 = 12_000_000;

/// The largest conv output (values) the test kit's calibration takes.
const MAX_LAYER_OUTPUT: usize = 60_000;

/// How much worse than its recorded held-out error `--check` lets the table predict a
/// model (absolute, in relative error; fitted models may be off by a little more than
/// held-out ones): QEMU's counts are exact, so only a kernel change moves them.
const CHECK_SLACK: f64 = 0.02;

/// The subcommand.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    let (models, seed, update, check) = (args.models, args.seed, args.update, args.check);
    ensure!(update as u8 + check as u8 <= 1, "choose one of --update and --check");
    ensure!(
        (2 * HELD_OUT..=1000).contains(&models),
        "--models {models}: between {} and 1000 (every {HELD_OUT}th is held out)",
        2 * HELD_OUT
    );
    let dir = root().join("target/xtask/calibrate");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = SplitMix(seed);
    let mut blobs = Vec::new();
    for i in 0..models {
        let (input, arch) = draw(&mut rng);
        let spec = fitnets_tests::model(&format!("calibrate{i}"), input, &arch, 10, seed.wrapping_add(i as u64));
        let blob = encode(&spec).map_err(|e| anyhow::anyhow!("encoding calibration model {i}: {e:?}"))?;
        let path = dir.join(format!("model{i}.fnet"));
        std::fs::write(&path, &blob).with_context(|| format!("writing {}", path.display()))?;
        blobs.push((path, blob));
    }
    let mut rows = Vec::new();
    for (core, board) in CORES {
        let board = boards::find(board)?;
        let fit = calibrate(core, board, &blobs)?;
        print!("{}", fit.describe());
        rows.push(fit);
    }
    let path = root().join("firmware").join(COST_TABLE);
    if update {
        std::fs::write(&path, table(&rows, models, seed)).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    } else if check {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for fit in &rows {
            let recorded = Coefficients::find(&text, fit.core)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .with_context(|| format!("{} has no row for {}", path.display(), fit.core))?;
            let worst = fit.models.iter().map(|m| m.error(&recorded)).fold(0.0, f64::max);
            ensure!(
                worst <= recorded.max_error + CHECK_SLACK,
                "{}'s {} row predicts a measured model {:.1} % off, beyond its recorded {:.1} %: run `cargo xtask \
                 calibrate --update` and commit it",
                path.display(),
                fit.core,
                100.0 * worst,
                100.0 * recorded.max_error
            );
            println!("{} is current for {} (worst {:.2} %)", COST_TABLE, fit.core, 100.0 * worst);
        }
    }
    Ok(())
}

/// A model of the searched family: its input and layers.
fn draw(rng: &mut SplitMix) -> (Shape, Vec<Arch>) {
    loop {
        let input = if rng.below(3) == 0 { Shape::new(32, 32, 3) } else { Shape::new(28, 28, 1) };
        let depth = 3 + rng.below(9);
        // Every stage gets one layer, the rest go to stages at random.
        let mut stages = [1, 1, 1];
        for _ in 3..depth {
            stages[rng.below(3)] += 1;
        }
        let pieces = 1 + rng.below(3) as u16;
        let mut arch = Vec::new();
        let mut macs = 0u64;
        let (mut h, mut w, mut c) = (input.height, input.width, u64::from(input.channels));
        for (stage, &layers) in stages.iter().enumerate() {
            for _ in 0..layers {
                // The test kit calibrates each layer as a model of its own, whose output
                // must fit its class count.
                let most = (MAX_LAYER_OUTPUT / (usize::from(h) * usize::from(w) * usize::from(pieces))).min(48);
                let units = 2 + rng.below(most - 1) as u16;
                arch.push(Arch::Conv { window: Window::same(h, w, 3, 3, 1, 1), outputs: units * pieces });
                if pieces > 1 {
                    arch.push(Arch::Maxout(pieces));
                }
                macs += u64::from(h) * u64::from(w) * 9 * c * u64::from(units * pieces);
                c = u64::from(units);
            }
            if stage < 2 {
                arch.push(Arch::MaxPool(Window::valid(2, 2, 2, 2)));
                (h, w) = (h / 2, w / 2);
            }
        }
        arch.push(Arch::Flatten);
        arch.push(Arch::Dense(10));
        macs += u64::from(h) * u64::from(w) * c * 10;
        if macs <= MAX_MACS {
            return (input, arch);
        }
    }
}

/// One measured model: its parts' features and instructions, the whole inference's, and
/// the estimated cycles.
struct Measured {
    parts: Vec<(Features, f64)>,
    whole: (Features, f64),
    cycles: f64,
    held_out: bool,
}

impl Measured {
    /// Relative error of `coefficients` on the whole inference.
    fn error(&self, coefficients: &Coefficients<'_>) -> f64 {
        (coefficients.instructions(&self.whole.0) - self.whole.1).abs() / self.whole.1
    }

    /// Relative error of the cycles `coefficients` estimate against the model's own.
    fn cycles_error(&self, coefficients: &Coefficients<'_>) -> f64 {
        let estimated = coefficients.instructions(&self.whole.0) * coefficients.cycles_per_instruction;
        (estimated - self.cycles).abs() / self.cycles
    }
}

/// A core's fit and the models it was measured on.
struct Fit {
    core: &'static str,
    weights: Features,
    cycles_per_instruction: f64,
    models: Vec<Measured>,
}

impl Fit {
    fn coefficients(&self) -> Coefficients<'static> {
        let held: Vec<&Measured> = self.models.iter().filter(|m| m.held_out).collect();
        let mut row = Coefficients {
            core: self.core,
            weights: self.weights,
            cycles_per_instruction: self.cycles_per_instruction,
            fitted: (self.models.len() - held.len()) as u32,
            held_out: held.len() as u32,
            mean_error: 0.0,
            max_error: 0.0,
            cycles_mean_error: 0.0,
            cycles_max_error: 0.0,
        };
        let errors: Vec<f64> = held.iter().map(|m| m.error(&row)).collect();
        row.mean_error = mean(&errors);
        row.max_error = errors.iter().copied().fold(0.0, f64::max);
        let cycles: Vec<f64> = held.iter().map(|m| m.cycles_error(&row)).collect();
        row.cycles_mean_error = mean(&cycles);
        row.cycles_max_error = cycles.iter().copied().fold(0.0, f64::max);
        row
    }

    fn describe(&self) -> String {
        let row = self.coefficients();
        let fitted_error = self.models.iter().filter(|m| !m.held_out).map(|m| m.error(&row)).fold(0.0, f64::max);
        format!(
            "{}: fitted on {} models ({} parts), {:.2} cycles per instruction; held-out models ({}): instructions \
             off by {:.2} % on average, {:.2} % at most; estimated cycles {:.2} % / {:.2} %; fitted models {:.2} % \
             at most\n",
            self.core,
            row.fitted,
            self.models.iter().filter(|m| !m.held_out).map(|m| m.parts.len()).sum::<usize>(),
            row.cycles_per_instruction,
            row.held_out,
            100.0 * row.mean_error,
            100.0 * row.max_error,
            100.0 * row.cycles_mean_error,
            100.0 * row.cycles_max_error,
            100.0 * fitted_error
        )
    }
}

/// Measures every blob on `board` and fits the core's coefficients.
fn calibrate(core: &'static str, board: Board, blobs: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<Fit> {
    let mut models = Vec::new();
    for (i, (path, blob)) in blobs.iter().enumerate() {
        let model = Model::from_bytes(blob).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        eprintln!("calibrate: {core}, model {} of {}", i + 1, blobs.len());
        let measured = bench::measure(board, Some(path))?;
        let cycles = measured.estimate.as_ref().map(|e| e.cycles as f64).context("the core has no cycle model")?;
        models.push(parts(&model, &measured.counts, cycles, i % HELD_OUT == HELD_OUT - 1)?);
    }
    let rows: Vec<&(Features, f64)> = models.iter().filter(|m| !m.held_out).flat_map(|m| &m.parts).collect();
    let weights = least_squares(&rows)?;
    let fitted: Vec<&Measured> = models.iter().filter(|m| !m.held_out).collect();
    // Instructions of the whole inference, markers included, as the estimate counts them.
    let cycles_per_instruction = fitted.iter().map(|m| m.cycles / m.whole.1).sum::<f64>() / fitted.len().max(1) as f64;
    Ok(Fit { core, weights, cycles_per_instruction, models })
}

/// Splits a bench run's regions (empty, input, each counted step, argmax, whole) into
/// feature rows.
fn parts(model: &Model<'_>, counts: &[u64], cycles: f64, held_out: bool) -> anyhow::Result<Measured> {
    let steps: Vec<_> = plan::steps(model)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|s| !s.is_alias())
        .collect();
    ensure!(counts.len() == steps.len() + 4, "the plugin reported {} regions for {} steps", counts.len(), steps.len());
    let overhead = counts[0];
    let net = |i: usize| counts[i].saturating_sub(overhead) as f64;
    let mut parts = vec![(cost::input_features(model), net(1))];
    for (i, step) in steps.iter().enumerate() {
        parts.push((cost::step_features(step), net(2 + i)));
    }
    parts.push((cost::argmax_features(model), net(2 + steps.len())));
    let whole = net(counts.len() - 1);
    let summed: f64 = parts.iter().map(|p| p.1).sum();
    parts.push((cost::glue_features(steps.len()), whole - summed));
    let features = cost::features(model).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Measured { parts, whole: (features, whole), cycles, held_out })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The weights minimizing the squared error over `rows`, each column scaled to unit size
/// first; columns no row uses get 0. A tiny ridge keeps nearly collinear columns
/// (MACs and padded MACs of models whose windows are whole runs) solvable.
fn least_squares(rows: &[&(Features, f64)]) -> anyhow::Result<Features> {
    let mut scale = [0.0; FEATURES];
    for (f, _) in rows {
        for (s, x) in scale.iter_mut().zip(f) {
            *s += x * x;
        }
    }
    let scale = scale.map(|s| if s > 0.0 { (s / rows.len() as f64).sqrt() } else { 0.0 });
    let used: Vec<usize> = (0..FEATURES).filter(|&j| scale[j] > 0.0).collect();
    let n = used.len();
    let mut a = vec![vec![0.0; n + 1]; n];
    for (f, y) in rows {
        let x: Vec<f64> = used.iter().map(|&j| f[j] / scale[j]).collect();
        for r in 0..n {
            for c in 0..n {
                a[r][c] += x[r] * x[c];
            }
            a[r][n] += x[r] * y;
        }
    }
    let ridge = 1e-9 * (0..n).map(|i| a[i][i]).fold(0.0, f64::max);
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += ridge;
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..n {
        let pivot = (col..n).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs())).unwrap_or(col);
        a.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            bail!("the calibration models cannot tell the cost model's columns apart");
        }
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let factor = row[col] / p;
                for (x, y) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= factor * y;
                }
            }
        }
    }
    let mut weights = [0.0; FEATURES];
    for (i, &j) in used.iter().enumerate() {
        weights[j] = a[i][n] / a[i][i] / scale[j];
    }
    Ok(weights)
}

/// The text of `firmware/memory/cost.txt`.
fn table(fits: &[Fit], models: usize, seed: u64) -> String {
    let mut text = format!(
        "# The cost model of fitnets_shared::cost per core: instructions of one inference as a linear\n\
         # function of the model's shape, fitted on exact QEMU counts of {models} random models of the\n\
         # searched family (seed {seed}), every {HELD_OUT}th held out. Written by `cargo xtask calibrate\n\
         # --update`; `fitnets fit` embeds it. Columns: core, estimated cycles per instruction,\n\
         # models fitted, models held out, mean and largest relative error of instructions on\n\
         # the held-out models, the same of their estimated cycles, then one weight per\n\
         # feature:\n"
    );
    for i in 0..FEATURES {
        let block = match cost::block(i) {
            "" => String::new(),
            block => format!("{block} "),
        };
        let _ = writeln!(text, "#   w{i:<2} {block}{}", cost::name(i));
    }
    for fit in fits {
        let row = fit.coefficients();
        let _ = write!(
            text,
            "{} {:.6} {} {} {:.6} {:.6} {:.6} {:.6}",
            row.core,
            row.cycles_per_instruction,
            row.fitted,
            row.held_out,
            row.mean_error,
            row.max_error,
            row.cycles_mean_error,
            row.cycles_max_error
        );
        for w in row.weights {
            let _ = write!(text, " {w:.9e}");
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_linear_law() {
        let mut rng = SplitMix(3);
        let truth: Features = std::array::from_fn(|j| if j % 3 == 0 { 0.0 } else { j as f64 + 0.5 });
        let rows: Vec<(Features, f64)> = (0..200)
            .map(|_| {
                let f: Features = std::array::from_fn(|j| if j % 3 == 0 { 0.0 } else { rng.below(1000) as f64 });
                let y = f.iter().zip(&truth).map(|(a, b)| a * b).sum();
                (f, y)
            })
            .collect();
        let refs: Vec<&(Features, f64)> = rows.iter().collect();
        let w = least_squares(&refs).unwrap();
        for j in 0..FEATURES {
            assert!((w[j] - truth[j]).abs() < 1e-6, "w{j} = {} not {}", w[j], truth[j]);
        }
    }

    #[test]
    fn drawn_models_are_of_the_family_and_encode() {
        let mut rng = SplitMix(5);
        for i in 0..20 {
            let (input, arch) = draw(&mut rng);
            let spec = fitnets_tests::model("m", input, &arch, 10, i);
            let blob = encode(&spec).unwrap();
            let model = Model::from_bytes(&blob).unwrap();
            assert!(cost::features(&model).unwrap()[2] > 0.0);
        }
    }
}
