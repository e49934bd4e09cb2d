//! `fitnets predict MODEL IMAGE...`: the class and top scores of single pictures.
//!
//! MODEL is an int8 blob, run with `shared`'s kernels exactly as the device runs it
//! (scores: its dequantized logits), or a run directory, run in float by burn as `eval`
//! runs it, averaging the views the run classifies by (scores: softmax probabilities).
//! Every image is read and converted before anything is classified, so a bad file
//! stops the command before any output.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use fitnets_images::{Conversion, Resize};
use fitnets_shared::{Model, plan};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::{DeviceArgs, positive_count, resize_mode};
use crate::data::{Augment, Dataset, FASHION_MNIST_LABELS};
use crate::quant::eval::model_input;
use crate::run::dir::RunDir;
use crate::run::{RunInfo, load_run};
use crate::train::batch::Batcher;

/// Arguments of `fitnets predict`.
#[derive(Args, Clone, Debug)]
pub struct PredictArgs {
    /// A `.fnet` blob (int8 with shared's kernels, what the device computes) or a run
    /// directory (the float network).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Image files (PNG, JPEG, BMP, GIF, PGM/PPM or TIFF), or folders whose images, at
    /// any depth, are all classified.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// Classes shown per image, best first.
    #[arg(long, default_value_t = 3, value_name = "K", value_parser = positive_count)]
    pub top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How pictures of another aspect ratio than the model's input are fitted to it:
    /// `stretch`, `fill` or `fit` (see `train --help`). A run uses the mode it was
    /// trained with (giving another is refused); a blob does not record one, so this
    /// is its mode (default `stretch`).
    #[arg(long, value_name = "MODE", value_parser = resize_mode)]
    pub resize: Option<Resize>,
    /// For a run: the device its float network runs on.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The most images one command classifies.
pub const MAX_IMAGES: usize = 1_000_000;

/// What the scores are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scores {
    /// Softmax of the float network's (view-averaged) logits.
    Probabilities,
    /// The int8 logits, dequantized with the blob's output scale and zero point.
    DequantizedLogits,
}

/// One class and its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub class: usize,
    pub label: String,
    pub score: f32,
}

/// The answer for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    /// The best classes, best first (ties by lower class number, as the device breaks them).
    pub top: Vec<Scored>,
}

/// All answers, as `--json` prints them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Predictions {
    pub model: PathBuf,
    /// `int8` (blob) or `float` (run).
    pub kind: &'static str,
    pub scores: Scores,
    /// How images were converted: `28x28 grayscale, resize stretch`.
    pub conversion: String,
    pub predictions: Vec<Prediction>,
}

/// `fitnets predict`.
pub fn predict(args: &PredictArgs) -> anyhow::Result<()> {
    let predictions = classify(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
    } else {
        print!("{}", table(&predictions));
    }
    Ok(())
}

/// Classifies the images of `args`.
pub fn classify(args: &PredictArgs) -> anyhow::Result<Predictions> {
    let files = fitnets_images::image_files(&args.images, MAX_IMAGES)?;
    if args.model.is_dir() {
        let info: RunInfo = RunDir::open(&args.model)?.read_json("run.json")?;
        let resize = match (&info.data.images, args.resize) {
            (Some(images), Some(ours)) if images.resize != ours => bail!(
                "--resize {ours}: {} was trained with --resize {}; leave the option out to use the run's",
                args.model.display(),
                images.resize
            ),
            (Some(images), _) => images.resize,
            (None, ours) => ours.unwrap_or_default(),
        };
        let conversion = Conversion::new(info.config.input, resize).map_err(anyhow::Error::msg)?;
        let images = convert_all(&files, &conversion, info.config.classes)?;
        let labels = run_labels(&info);
        let top = crate::with_backend!(args.device.device, args.device.backend, |B, dev| float_scores::<
            <B as AutodiffBackend>::InnerBackend,
        >(
            &args.model, &images, &dev
        ))?;
        Ok(assemble(args, "float", Scores::Probabilities, &conversion, files, top, &labels))
    } else {
        let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
        let model = Model::from_bytes(&bytes).map_err(|e| {
            anyhow::anyhow!("{} is neither a run directory nor a valid model blob: {e}", args.model.display())
        })?;
        let conversion =
            Conversion::new(model_input(&model), args.resize.unwrap_or_default()).map_err(anyhow::Error::msg)?;
        let images = convert_all(&files, &conversion, usize::from(model.classes()))?;
        let labels: Vec<String> = model.labels().map(str::to_string).collect();
        let scores = int8_scores(&model, &images)?;
        Ok(assemble(args, "int8", Scores::DequantizedLogits, &conversion, files, scores, &labels))
    }
}

/// Every file converted, in parallel, as one unlabelled set; the first bad file is the
/// error.
fn convert_all(files: &[PathBuf], conversion: &Conversion, classes: usize) -> anyhow::Result<Dataset> {
    let pixels: Vec<Vec<u8>> =
        files.par_iter().map(|f| fitnets_images::convert_file(f, conversion)).collect::<anyhow::Result<_>>()?;
    Ok(Dataset {
        images: pixels.concat(),
        labels: vec![0; files.len()],
        height: conversion.height as usize,
        width: conversion.width as usize,
        channels: usize::from(conversion.channels),
        classes,
        name: "images".into(),
    })
}

/// The int8 model's dequantized logits for every image.
fn int8_scores(model: &Model<'_>, images: &Dataset) -> anyhow::Result<Vec<Vec<f32>>> {
    let arena = plan::arena_bytes(model) as usize;
    let quant = model.output_quant();
    let scores = (0..images.len())
        .into_par_iter()
        .map_init(
            || vec![0u8; arena],
            |arena, i| {
                fitnets_shared::run(model, images.image(i), arena).map(|p| {
                    p.logits
                        .iter()
                        .map(|&q| quant.scale * (i32::from(q) - i32::from(quant.zero_point)) as f32)
                        .collect()
                })
            },
        )
        .collect::<Result<Vec<Vec<f32>>, _>>()
        .map_err(|e| anyhow::anyhow!("the int8 model failed: {e:?}"))?;
    Ok(scores)
}

/// The float run's class probabilities for every image, its views averaged.
fn float_scores<B: Backend>(run: &Path, images: &Dataset, device: &B::Device) -> anyhow::Result<Vec<Vec<f32>>> {
    let (net, info) = load_run::<B>(run, device)?;
    let batcher = Batcher { normalization: info.data.normalization.clone(), augment: Augment::default() };
    let background = batcher.normalization.background();
    let indices: Vec<usize> = (0..images.len()).collect();
    let mut scores = Vec::with_capacity(images.len());
    for chunk in indices.chunks(256) {
        let x = batcher.images::<B>(images, chunk, None, device);
        let probabilities = softmax(net.predict(x, info.views(), &background), 1);
        let classes = probabilities.dims()[1];
        let values: Vec<f32> =
            probabilities.into_data().convert::<f32>().to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        scores.extend(values.chunks(classes).map(<[f32]>::to_vec));
    }
    Ok(scores)
}

/// The class names of a run: recorded, else Fashion-MNIST's for a Fashion-MNIST run
/// that predates the record, else the class numbers.
fn run_labels(info: &RunInfo) -> Vec<String> {
    let classes = info.config.classes;
    if info.data.classes.len() == classes {
        return info.data.classes.clone();
    }
    if crate::data::base_name(&info.data.name) == "fashion-mnist" && classes == FASHION_MNIST_LABELS.len() {
        return FASHION_MNIST_LABELS.iter().map(|s| s.to_string()).collect();
    }
    (0..classes).map(|c| c.to_string()).collect()
}

fn assemble(
    args: &PredictArgs,
    kind: &'static str,
    scores: Scores,
    conversion: &Conversion,
    files: Vec<PathBuf>,
    values: Vec<Vec<f32>>,
    labels: &[String],
) -> Predictions {
    let predictions = files
        .into_iter()
        .zip(values)
        .map(|(image, values)| {
            let mut order: Vec<usize> = (0..values.len()).collect();
            // Stable: equal scores keep the lower class first, as the device's argmax.
            order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
            let top = order
                .into_iter()
                .take(args.top)
                .map(|class| Scored {
                    class,
                    label: labels.get(class).cloned().unwrap_or_else(|| class.to_string()),
                    score: values[class],
                })
                .collect();
            Prediction { image, top }
        })
        .collect();
    Predictions { model: args.model.clone(), kind, scores, conversion: conversion.to_string(), predictions }
}

/// The predictions as a table: one row per image, the top classes with their scores.
pub fn table(predictions: &Predictions) -> String {
    let what = match predictions.scores {
        Scores::Probabilities => "probabilities of the float network",
        Scores::DequantizedLogits => "dequantized int8 logits, shared's kernels as on the device",
    };
    let mut text = format!(
        "{} ({}): images as {}; scores are {what}\n",
        predictions.model.display(),
        predictions.kind,
        predictions.conversion
    );
    let width = predictions.predictions.iter().map(|p| p.image.display().to_string().len()).max().unwrap_or(5).max(5);
    let label_width = predictions.predictions.iter().flat_map(|p| &p.top).map(|s| s.label.len()).max().unwrap_or(1);
    for prediction in &predictions.predictions {
        text += &format!("{:<width$}", prediction.image.display().to_string());
        for scored in &prediction.top {
            text += &format!("  {:<label_width$} {:>8.3}", scored.label, scored.score);
        }
        text.push('\n');
    }
    text
}
