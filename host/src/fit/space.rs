//! The students `fitnets fit` considers, and what each would cost on the target before it
//! is trained.
//!
//! The space is the depth sweep's generator ([`mod@generate`]) widened: every depth of
//! [`DEPTHS`], 1 to 3 maxout pieces, up to three splits of the layers over the stages
//! (where the two poolings go), at a ladder of multiplication budgets, and for each
//! such shape the widest student that still fits the target ([`Pricer::edge`]). Each candidate is
//! priced exactly as the device would hold it: its untrained network is quantized and
//! encoded with the teacher's normalization and labels, so the blob, the arena and the
//! serve program's buffers are those of the trained student (weights change values, not
//! sizes: only a handful of varint zero points can differ by a byte); its instructions
//! come from the core's calibrated cost model (`fitnets_shared::cost`). Flash adds the
//! `serve` program's code and RAM its other static data as measured on the target's
//! firmware board (`firmware/memory/programs.txt`; the largest of the boards where it
//! has none), and the stack the firmware keeps.

use anyhow::Context as _;
use fitnets_shared::Model;
use fitnets_shared::cost::Coefficients;
use fitnets_shared::format::encode::encode;
use serde::{Deserialize, Serialize};

use super::pareto::Point;
use super::target::Target;
use crate::data::Normalization;
use crate::model::generate::{self, StudentSpec};
use crate::model::{Net, NetConfig, count};
use crate::quant::calibrate::{Calibration, calibrate};
use crate::quant::extract::float_model;
use crate::quant::quantize::{UnitScales, quantize};
use crate::report::boards::{Firmware, Needs};

/// Conv layers of the candidates.
pub const DEPTHS: [usize; 7] = [3, 4, 5, 6, 7, 9, 11];

/// Maxout pieces of the candidates (1: ReLU convs).
pub const PIECES: [usize; 3] = [1, 2, 3];

/// The budget ladder: shares of the paper's MNIST FitNet's multiply-accumulates per
/// input pixel (5,947,032 for 784 pixels) times the teacher's input pixels, from 1/16
/// to 2 in steps of √2.
pub const LADDER_STEPS: i32 = 11;
const FITNET_MACS_PER_PIXEL: f64 = 5_947_032.0 / 784.0;

/// The default budgets for an input of `pixels` (height x width).
pub fn ladder(pixels: usize) -> Vec<u64> {
    (0..LADDER_STEPS)
        .map(|k| {
            let share = 2f64.powf(f64::from(k - 8) / 2.0);
            (share * FITNET_MACS_PER_PIXEL * pixels as f64).round() as u64
        })
        .collect()
}

/// The splits of `depth` conv layers over the three stages: the sweep's (later stages
/// fuller), its mirror (the first stage fuller) and the middle one fuller.
pub fn splits(depth: usize) -> Vec<[usize; 3]> {
    let late = generate::stages(depth);
    let early = [late[2], late[1], late[0]];
    let base = depth / 3;
    let middle = [base, depth - 2 * base, base];
    let mut all = vec![late];
    for split in [early, middle] {
        if !all.contains(&split) && split.iter().all(|&n| n >= 1) {
            all.push(split);
        }
    }
    all
}

/// One generated student.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `d{depth}-p{pieces}-s{split}-m{budget}k`: its directory under `candidates/`.
    pub id: String,
    pub depth: usize,
    pub pieces: usize,
    pub split: [usize; 3],
    pub budget_macs: u64,
    /// Units per conv layer.
    pub widths: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub price: Price,
    /// Why it cannot be the answer, if it cannot (flash, RAM or time over budget).
    pub pruned: Option<String>,
    /// Whether it is the widest student of its shape (depth, pieces, split) that fits,
    /// found by bisecting the budget ([`Pricer::edge`]), rather than one of the ladder.
    #[serde(default)]
    pub edge: bool,
}

impl Candidate {
    /// The point of this candidate trained to `accuracy`: its accuracy, estimated time
    /// (or MACs where the target cannot price time) and flash.
    pub fn point(&self, accuracy: f64) -> Point {
        Point { accuracy, time: self.time(), flash: self.price.flash_bytes }
    }

    /// What the search calls this candidate's time: milliseconds where the core has a
    /// cost model, else MACs.
    pub fn time(&self) -> f64 {
        self.price.ms.unwrap_or(self.macs as f64)
    }
}

/// Widths as a name: `16-16-12`.
pub fn join_widths(widths: &[usize]) -> String {
    widths.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

/// The seed of the untrained weights a student is priced with.
const PRICING_SEED: u64 = 0x5eed;

/// Bisection steps of [`Pricer::edge`]: the budget found is within 2^(1/2^8) of the
/// largest that fits (for the ladder's span of 64x, within 1.6 %).
pub const EDGE_STEPS: usize = 8;

/// What a student costs on the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub blob_bytes: u64,
    /// Blob plus the serve program's code.
    pub flash_bytes: u64,
    /// Arena, frame buffers, other static data and stack.
    pub ram_bytes: u64,
    pub arena_bytes: u64,
    /// Predicted instructions of one inference, and the estimated milliseconds at the
    /// target's clock (`None` without a cost model for the core).
    pub instructions: Option<f64>,
    pub ms: Option<f64>,
    /// The estimate plus the cost model's largest error on held-out models
    /// (`Coefficients::cycles_max_error`): what `--latency-ms` is held against, so that
    /// the proof's exact count does not land over the budget.
    #[serde(default)]
    pub ms_bound: Option<f64>,
}

/// What pricing needs besides the candidate: the target, with its cost model and the
/// firmware's measured sizes read once, and the teacher's data facts.
#[derive(Debug)]
pub struct Pricer<'a> {
    pub target: &'a Target,
    pub normalization: &'a Normalization,
    pub labels: &'a [String],
    pub teacher: &'a NetConfig,
    cost: Option<Coefficients<'static>>,
    firmware: Firmware,
}

impl<'a> Pricer<'a> {
    /// A pricer for `target`: its core's cost model and its board's firmware sizes.
    pub fn new(
        target: &'a Target,
        normalization: &'a Normalization,
        labels: &'a [String],
        teacher: &'a NetConfig,
    ) -> anyhow::Result<Pricer<'a>> {
        let firmware = target.firmware_board.as_deref().map_or_else(Firmware::default, Firmware::on);
        Ok(Pricer { target, normalization, labels, teacher, cost: target.cost()?, firmware })
    }

    /// Prices the network of `config` (its TOML parsed).
    pub fn price(&self, config: &NetConfig) -> anyhow::Result<Price> {
        // Shapes decide the sizes, up to the varint zero points of a few quantization
        // parameters: the weights are drawn from a fixed seed, so that a price, and a
        // search, are the same every time.
        let device = Default::default();
        <burn::backend::Flex as burn::tensor::backend::Backend>::seed(&device, PRICING_SEED);
        let net = Net::<burn::backend::Flex>::new(config, &device)?;
        let model = float_model(&net, config)?;
        let [h, w, c] = config.input;
        // Shapes, not values, decide the sizes: a few drawn images calibrate the ranges.
        let images: Vec<u8> = (0..4 * h * w * c).map(|i| (i * 37 % 251) as u8).collect();
        let ranges = calibrate(&model, self.normalization, &images, Calibration::MinMax)?;
        let quantized = quantize(&model, self.normalization, &ranges, self.labels, UnitScales::PerChannel)?;
        let blob = encode(&quantized.spec).context("encoding the priced model")?;
        self.price_blob(&blob)
    }

    /// The price of an encoded model on the target.
    pub fn price_blob(&self, blob: &[u8]) -> anyhow::Result<Price> {
        let model = Model::from_bytes(blob).map_err(|e| anyhow::anyhow!("the priced model does not decode: {e}"))?;
        let needs = Needs::of(&model, blob.len() as u64, self.firmware)?;
        let instructions = match &self.cost {
            Some(cost) => {
                Some(cost.instructions(&fitnets_shared::cost::features(&model).map_err(|e| anyhow::anyhow!("{e}"))?))
            }
            None => None,
        };
        let mhz = f64::from(self.target.mhz);
        let ms = self.cost.zip(instructions).map(|(cost, n)| n * cost.cycles_per_instruction / (mhz * 1e3));
        let ms_bound = self.cost.zip(ms).map(|(cost, ms)| ms * (1.0 + cost.cycles_max_error));
        Ok(Price {
            blob_bytes: blob.len() as u64,
            flash_bytes: needs.flash(),
            ram_bytes: needs.ram(),
            arena_bytes: needs.arena_bytes,
            instructions,
            ms,
            ms_bound,
        })
    }

    /// Generates, prices and judges the candidate of `spec`; `None` when the generator
    /// cannot meet the spec (a budget too small for the depth, say) or the student has no
    /// regressor to the teacher's hint.
    pub fn candidate(&self, spec: &StudentSpec) -> anyhow::Result<Option<(Candidate, String)>> {
        let Ok((config, text)) = generate::student(spec) else { return Ok(None) };
        if crate::model::regressor::regressor_shape(&config, self.teacher).is_err() {
            return Ok(None);
        }
        let (params, macs) = count::totals(&config)?;
        let widths = config.conv_widths();
        let [a, b, c] = spec.split;
        let id = format!("d{}-p{}-s{a}{b}{c}-m{}k", spec.depth, spec.pieces, spec.budget_macs.div_ceil(1000));
        let price = self.price(&config).with_context(|| format!("pricing candidate {id}"))?;
        let pruned = verdict(&price, self.target);
        let candidate = Candidate {
            id,
            depth: spec.depth,
            pieces: spec.pieces,
            split: spec.split,
            budget_macs: spec.budget_macs,
            widths,
            params,
            macs,
            price,
            pruned,
            edge: false,
        };
        Ok(Some((candidate, text)))
    }

    /// The widest student of `shape`'s depth, pieces and split that fits the target: the
    /// budget bisected (geometrically, [`EDGE_STEPS`] times) between `lo`, where it must
    /// fit, and `hi`; `None` when even `lo` does not fit or cannot be generated.
    pub fn edge(&self, shape: &StudentSpec, lo: u64, hi: u64) -> anyhow::Result<Option<(Candidate, String)>> {
        let at = |budget_macs: u64| self.candidate(&StudentSpec { budget_macs, ..*shape });
        let fits = |c: &Option<(Candidate, String)>| c.as_ref().is_some_and(|(c, _)| c.pruned.is_none());
        let mut best = at(lo)?;
        if !fits(&best) {
            return Ok(None);
        }
        let top = at(hi)?;
        if fits(&top) {
            best = top;
        } else {
            let (mut lo, mut hi) = (lo as f64, hi as f64);
            for _ in 0..EDGE_STEPS {
                let mid = (lo * hi).sqrt();
                let candidate = at(mid.round() as u64)?;
                if fits(&candidate) {
                    (lo, best) = (mid, candidate);
                } else {
                    hi = mid;
                }
            }
        }
        Ok(best.map(|(c, text)| (Candidate { edge: true, ..c }, text)))
    }
}

/// Every student of the space for `input` images in `classes` classes, priced: each
/// shape at each of `budgets`, and its widest student that fits (bisected between the
/// smallest budget and twice the largest), with its TOML.
pub fn generate(
    pricer: &Pricer<'_>,
    input: [usize; 3],
    classes: usize,
    budgets: &[u64],
) -> anyhow::Result<Vec<(Candidate, String)>> {
    let mut all: Vec<(Candidate, String)> = Vec::new();
    let (lo, hi) = (budgets.iter().min().copied().unwrap_or(1), 2 * budgets.iter().max().copied().unwrap_or(1));
    for &depth in &DEPTHS {
        for &pieces in &PIECES {
            for split in splits(depth) {
                let shape = StudentSpec { depth, budget_macs: 0, input, classes, pieces, split };
                for &budget_macs in budgets {
                    all.extend(pricer.candidate(&StudentSpec { budget_macs, ..shape })?);
                }
                if let Some(edge) = pricer.edge(&shape, lo, hi)?
                    && !all.iter().any(|(c, _)| c.id == edge.0.id)
                {
                    all.push(edge);
                }
            }
        }
    }
    Ok(all)
}

/// Why `price` does not fit `target`, or `None` when it fits.
pub fn verdict(price: &Price, target: &Target) -> Option<String> {
    let mut over = Vec::new();
    if price.flash_bytes > target.flash_bytes {
        over.push(format!("flash {:.1} KiB > {} KiB", kib(price.flash_bytes), target.flash_bytes / 1024));
    }
    if price.ram_bytes > target.ram_bytes {
        over.push(format!("RAM {:.1} KiB > {} KiB", kib(price.ram_bytes), target.ram_bytes / 1024));
    }
    if let (Some(limit), Some(ms), Some(bound)) = (target.latency_ms, price.ms, price.ms_bound)
        && bound > limit
    {
        over.push(format!("time {ms:.1} ms (at most {bound:.1}) > {limit} ms"));
    }
    (!over.is_empty()).then(|| over.join(", "))
}

/// Bytes in KiB.
pub fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}
