//! The `fitnets export` subcommand and `fitnets eval` on a blob.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use fitnets_shared::Model;
use fitnets_shared::format::encode::pixel_table;

use crate::cli::{DataArgs, DeviceArgs};
use crate::commands::eval::confusion_table;
use crate::quant::calibrate::Calibration;
use crate::quant::eval::{agreement, evaluate_int8, model_input, net_predictions};
use crate::quant::export::{ExportOptions, export_run};
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
    let options = ExportOptions {
        calibration: args.calibration,
        images: args.calibration_images,
        unit_scales: args.unit_scales,
        ..ExportOptions::default()
    };
    let (exported, options, _) = export_run(&args.run, &args.data.spec(), args.labels.as_deref(), &options)?;
    write_atomic(&args.output, &exported.blob)?;
    print!("{}", exported.describe(&options, &args.output));
    Ok(())
}

/// `fitnets eval FILE`: the int8 blob on the test set with `shared`'s kernels; with
/// `float_run`, also the float model of that run and how often the two agree.
pub fn eval_blob(path: &Path, float_run: Option<&Path>, data: &DataArgs, device: &DeviceArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_bytes(&bytes).with_context(|| format!("{} is not a valid model", path.display()))?;
    let test = &data.spec().for_input(model_input(&model)).test_set()?;
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
