//! The `fitnets export` subcommand and `fitnets eval` on a blob.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use fitnets_shared::Model;
use fitnets_shared::format::encode::pixel_table;

use crate::cli::{DataArgs, DeviceArgs};
use crate::commands::eval::confusion_table;
use crate::data::{FASHION_MNIST_LABELS, cifar};
use crate::quant::calibrate::Calibration;
use crate::quant::eval::{agreement, evaluate_int8, net_predictions};
use crate::quant::export::{Export, ExportOptions, export, load_float_model};
use crate::quant::quantize::UnitScales;
use crate::run::dir::write_atomic;
use crate::run::load_run;

/// Arguments of `fitnets export`.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The finished run to export.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Where to write the int8 blob (`.fnet`).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// How activation ranges are chosen: `minmax`, `percentile[:P]` (P defaults to
    /// 99.99) or `mse`.
    #[arg(long, default_value = "minmax")]
    pub calibration: Calibration,
    /// Training images to calibrate on (a seeded sample).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub calibration_images: usize,
    /// The weight scales of a maxout unit's pieces: `per-channel` (each its own, the
    /// most precise) or `shared` (the unit's largest, so that the device requantizes
    /// once per unit instead of once per piece: about 5 % fewer instructions on the
    /// FitNet; check the int8 accuracy with `fitnets eval`).
    #[arg(long, value_enum, default_value_t = UnitScales::PerChannel, value_name = "HOW")]
    pub unit_scales: UnitScales,
    /// Class names, comma-separated. Default: Fashion-MNIST's names for the default data,
    /// the CIFAR-10 names with `--cifar`, else the class numbers.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub labels: Option<Vec<String>>,
    /// The data the run was trained on (its split and sample come from the run's record),
    /// to calibrate on its training images.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `fitnets export RUN -o FILE`.
pub fn export_command(args: &ExportArgs) -> anyhow::Result<()> {
    let (model, info) = load_float_model(&args.run)?;
    let splits = args.data.for_input(model.input()).load_like(&args.run, &info.data)?;
    let train = &splits.train;
    ensure!(
        [train.height, train.width, train.channels] == model.input(),
        "{} has {}x{}x{} images, the model of {} takes {:?}",
        train.name,
        train.height,
        train.width,
        train.channels,
        args.run.display(),
        model.input()
    );
    let labels = class_labels(args.labels.as_deref(), &info.data.classes, &args.data, model.classes())?;
    let options = ExportOptions {
        calibration: args.calibration,
        images: args.calibration_images,
        seed: info.data.split_seed,
        unit_scales: args.unit_scales,
    };
    let exported = export(&model, &info.data.normalization, &labels, train, &options)
        .with_context(|| format!("exporting {}", args.run.display()))?;
    write_atomic(&args.output, &exported.blob)?;
    print!("{}", describe(&exported, &options, &args.output));
    Ok(())
}

/// The class names of a blob: `explicit` if given, else those the run `recorded` (an
/// image folder's folder names, Fashion-MNIST's, CIFAR-10's), else those of the data set
/// `data` names (for runs that predate the record), else the class numbers.
pub fn class_labels(
    explicit: Option<&[String]>,
    recorded: &[String],
    data: &DataArgs,
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

/// A blob's input as `[height, width, channels]`.
pub fn model_input(model: &Model<'_>) -> [usize; 3] {
    let shape = model.input_shape();
    [usize::from(shape.height), usize::from(shape.width), usize::from(shape.channels)]
}

/// What `export` prints: the quantization of every tensor, the check, the sizes.
pub fn describe(exported: &Export, options: &ExportOptions, output: &Path) -> String {
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

/// `fitnets eval FILE`: the int8 blob on the test set with `shared`'s kernels; with
/// `float_run`, also the float model of that run and how often the two agree.
pub fn eval_blob(path: &Path, float_run: Option<&Path>, data: &DataArgs, device: &DeviceArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&bytes).with_context(|| format!("{} is not a valid model", path.display()))?;
    let test = &data.for_input(model_input(&model)).test_set()?;
    let int8 = evaluate_int8(&model, test).with_context(|| format!("evaluating {}", path.display()))?;
    println!(
        "{} (int8, {}): test accuracy {:.2}% on {} images",
        model.name(),
        path.display(),
        100.0 * int8.accuracy,
        test.len()
    );
    print!("{}", confusion_table(&int8.confusion));
    let Some(run) = float_run else { return Ok(()) };
    let float = crate::with_backend!(device.device, device.backend, |B, dev| {
        let (net, info) = load_run::<<B as AutodiffBackend>::InnerBackend>(run, &dev)?;
        let norm = &info.data.normalization;
        let table = pixel_table(&norm.mean, &norm.std, model.input_quant());
        ensure!(
            bytemuck_eq(&table, model.pixel_table().0),
            "{} was not exported from {}: its input normalization differs",
            path.display(),
            run.display()
        );
        anyhow::Ok(net_predictions(&net, test, norm, &dev))
    })?;
    let float_accuracy = crate::quant::eval::Evaluation::new(float.clone(), test, int8.confusion.len()).accuracy;
    println!(
        "float ({}): test accuracy {:.2}%; int8 - float = {:+.2} pp; identical predictions on {:.2}% of the images",
        run.display(),
        100.0 * float_accuracy,
        100.0 * (int8.accuracy - float_accuracy),
        100.0 * agreement(&int8.predictions, &float)
    );
    Ok(())
}

fn bytemuck_eq(table: &[i8], bytes: &[u8]) -> bool {
    table.len() == bytes.len() && table.iter().zip(bytes).all(|(&t, &b)| t as u8 == b)
}
