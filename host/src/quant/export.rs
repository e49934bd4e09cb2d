//! The export pipeline: a finished run → its float model → calibrated ranges → an int8
//! model → a blob, decoded back with `shared`'s validator before anyone sees it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, ensure};
use fitnets_shared::format::encode::encode;
use fitnets_shared::{Model, plan};

use super::calibrate::{Calibration, calibrate};
use super::eval::{agreement, evaluate_int8, float_model_predictions};
use super::extract::float_model;
use super::float::FloatModel;
use super::quantize::{Quantized, UnitScales, quantize};
use crate::data::{DataSpec, Dataset, FASHION_MNIST_LABELS, Normalization, Splits, cifar};
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

impl Export {
    /// What `fitnets export` prints: the quantization of every tensor, the check, the sizes.
    pub fn describe(&self, options: &ExportOptions, output: &Path) -> String {
        let exported = self;
        let mut text = String::new();
        let spec = &exported.quantized.spec;
        let _ = writeln!(
            text,
            "{}: {} calibration on {} training images, {} weight scales for maxout units",
            spec.name, options.calibration, exported.calibration_images, options.unit_scales
        );
        let _ = writeln!(text, "{:<24} {:>10} {:>10} {:>12} {:>5}", "tensor", "min", "max", "scale", "zp");
        for t in &exported.quantized.tensors {
            let _ = writeln!(
                text,
                "{:<24} {:>10.4} {:>10.4} {:>12.6} {:>5}",
                t.name, t.range.min, t.range.max, t.quant.scale, t.quant.zero_point
            );
        }
        let _ = writeln!(
            text,
            "int8 and float agree on {:.2}% of the calibration images; no int32 accumulator can overflow",
            100.0 * exported.agreement
        );
        let _ = writeln!(
            text,
            "wrote {}: {} bytes, arena {} bytes (decoded and validated by shared)",
            output.display(),
            exported.blob.len(),
            exported.arena_bytes
        );
        text
    }
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

/// The finished run in `dir` exported as `fitnets export` does it: calibrated on a
/// sample of the training images of `data`, which must be the data the run was trained
/// on (its split and sample come from the run's record, and the sample's seed is the
/// run's split seed, whatever `options.seed` says, so that a run's blob depends on the
/// run alone); the classes named `labels`, or as [`class_labels`] finds them. Returns the
/// export, the options it used and the run's splits (whose test set evaluates the blob).
pub fn export_run(
    dir: &Path,
    data: &DataSpec,
    labels: Option<&[String]>,
    options: &ExportOptions,
) -> anyhow::Result<(Export, ExportOptions, Splits)> {
    let (model, info) = load_float_model(dir)?;
    let splits = data.for_input(model.input()).load_like(dir, &info.data)?;
    let train = &splits.train;
    ensure!(
        [train.height, train.width, train.channels] == model.input(),
        "{} has {}x{}x{} images, the model of {} takes {:?}",
        train.name,
        train.height,
        train.width,
        train.channels,
        dir.display(),
        model.input()
    );
    let labels = class_labels(labels, &info.data.classes, data, model.classes())?;
    let options = ExportOptions { seed: info.data.split_seed, ..*options };
    let exported = export(&model, &info.data.normalization, &labels, train, &options)
        .with_context(|| format!("exporting {}", dir.display()))?;
    Ok((exported, options, splits))
}

/// The class names of a blob: `explicit` if given, else those the run `recorded` (an
/// image folder's folder names, Fashion-MNIST's, CIFAR-10's), else those of the data set
/// `data` names (for runs that predate the record), else the class numbers.
pub fn class_labels(
    explicit: Option<&[String]>,
    recorded: &[String],
    data: &DataSpec,
    classes: usize,
) -> anyhow::Result<Vec<String>> {
    if let Some(labels) = explicit {
        ensure!(labels.len() == classes, "{} labels given for {classes} classes", labels.len());
        return Ok(labels.to_vec());
    }
    if recorded.len() == classes {
        return Ok(recorded.to_vec());
    }
    if let Some(dir) = &data.cifar {
        let names = cifar::class_names(dir)?;
        if names.len() == classes {
            return Ok(names);
        }
    }
    if data.data.is_none() && data.cifar.is_none() && classes == FASHION_MNIST_LABELS.len() {
        return Ok(FASHION_MNIST_LABELS.iter().map(|&s| s.to_string()).collect());
    }
    Ok((0..classes).map(|c| c.to_string()).collect())
}
