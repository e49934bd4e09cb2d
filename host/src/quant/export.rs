//! The export pipeline: a finished run → its float model → calibrated ranges → an int8
//! model → a blob, decoded back with `shared`'s validator before anyone sees it.

use std::path::Path;

use anyhow::Context as _;
use fitnets_shared::format::encode::encode;
use fitnets_shared::{Model, plan};

use super::calibrate::{Calibration, calibrate};
use super::eval::{agreement, evaluate_int8, float_model_predictions};
use super::extract::float_model;
use super::float::FloatModel;
use super::quantize::{Quantized, UnitScales, quantize};
use crate::data::{Dataset, Normalization};
use crate::run::{RunInfo, load_run};

/// How to calibrate, and how maxout units' weight scales are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportOptions {
    pub calibration: Calibration,
    /// Training images to calibrate on (a seeded sample; all of them if fewer).
    pub images: usize,
    /// Seed of the sample.
    pub seed: u64,
    pub unit_scales: UnitScales,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions { calibration: Calibration::MinMax, images: 1000, seed: 0, unit_scales: UnitScales::PerChannel }
    }
}

/// A validated blob and what went into it.
#[derive(Clone, Debug)]
pub struct Export {
    /// The blob; [`Model::from_bytes`] accepts it.
    pub blob: Vec<u8>,
    pub quantized: Quantized,
    /// Exact activation arena the blob needs ([`plan::arena_bytes`]).
    pub arena_bytes: u32,
    /// Images actually calibrated on.
    pub calibration_images: usize,
    /// Share of the calibration images on which the int8 blob and the float model
    /// predict the same class: a first sanity check.
    pub agreement: f64,
}

/// The float model of the finished run in `dir`, with the run's record.
pub fn load_float_model(dir: &Path) -> anyhow::Result<(FloatModel, RunInfo)> {
    let (net, info) = load_run::<burn::backend::Flex>(dir, &Default::default())?;
    let model =
        float_model(&net, &info.config).with_context(|| format!("converting the model of {}", dir.display()))?;
    Ok((model, info))
}

/// Calibrates `model` on a sample of `train`, quantizes it and encodes it; `labels` names
/// the classes and `normalization` is the one the model was trained with.
pub fn export(
    model: &FloatModel,
    normalization: &Normalization,
    labels: &[String],
    train: &Dataset,
    options: &ExportOptions,
) -> anyhow::Result<Export> {
    anyhow::ensure!(options.images > 0, "calibration needs at least one image");
    let sample = train.sample(options.images, options.seed);
    let ranges = calibrate(model, normalization, &sample.images, options.calibration)?;
    let quantized = quantize(model, normalization, &ranges, labels, options.unit_scales)?;
    let blob = encode(&quantized.spec).context("encoding the int8 model")?;
    let decoded = Model::from_bytes(&blob).context("decoding the blob just written")?;
    let int8 = evaluate_int8(&decoded, &sample)?;
    let float = float_model_predictions(model, normalization, &sample);
    Ok(Export {
        arena_bytes: plan::arena_bytes(&decoded),
        calibration_images: sample.len(),
        agreement: agreement(&int8.predictions, &float),
        blob,
        quantized,
    })
}
