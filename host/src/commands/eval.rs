//! `fitnets eval RUN`: a finished run's test accuracy and confusion matrix.

use std::path::Path;

use anyhow::Context as _;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::cli::{DataArgs, DeviceArgs};
use crate::data::{self, Augment};
use crate::method::evaluate;
use crate::model::Views;
use crate::run::dir::RunDir;
use crate::run::{RunInfo, load_run};
use crate::train::batch::Batcher;

/// `fitnets eval RUN`: test accuracy and confusion matrix of a finished run, its inputs
/// normalized as it was trained (the data options only choose the test set). Each image
/// is classified by its mean logits over `views`, or, when that is `None`, over the views
/// the run classifies by ([`RunInfo::views`]).
pub fn eval(dir: &Path, views: Option<Views>, data: &DataArgs, device: &DeviceArgs) -> anyhow::Result<()> {
    let info: RunInfo = RunDir::open(dir)?.read_json("run.json")?;
    let test = data.spec().with_images_of(dir, &info.data)?.for_input(info.config.input).test_set()?;
    crate::with_backend!(device.device, device.backend, |B, dev| eval_in::<<B as AutodiffBackend>::InnerBackend>(
        dir, views, &test, &dev
    ))
}

fn eval_in<B: Backend>(
    dir: &Path,
    views: Option<Views>,
    test: &data::Dataset,
    device: &B::Device,
) -> anyhow::Result<()> {
    let info: RunInfo = RunDir::open(dir)?.read_json("run.json")?;
    info.config
        .check_images(test)
        .with_context(|| format!("the network of {} cannot classify these test images", dir.display()))?;
    let (net, info) = load_run::<B>(dir, device)?;
    let batcher = Batcher { normalization: info.data.normalization.clone(), augment: Augment::default() };
    let views = views.unwrap_or(info.views());
    if views.mirror && !info.schedule.augment.hflip {
        eprintln!(
            "note: {} was trained without --hflip: mirror images are unlike the images it learnt from",
            dir.display()
        );
    }
    if views.shift && info.schedule.augment.shift == 0 {
        eprintln!(
            "note: {} was trained without --shift: shifted images are unlike the images it learnt from",
            dir.display()
        );
    }
    let (accuracy, confusion) = evaluate(&net, test, &batcher, views, device);
    let how = match (views.description(), info.views().label()) {
        (Some(description), _) => format!(", {description}"),
        (None, Some(own)) => format!(", each once (the run itself is {own})"),
        (None, None) => String::new(),
    };
    println!("{}: test accuracy {:.2}% on {} images{how}", info.config.name, 100.0 * accuracy, test.len());
    print!("{}", confusion_table(&confusion));
    Ok(())
}

/// A confusion matrix as text, rows = true class, columns = predicted.
pub fn confusion_table(confusion: &[Vec<u64>]) -> String {
    let mut text = String::from("true\\pred");
    for c in 0..confusion.len() {
        text += &format!("{c:>6}");
    }
    text.push('\n');
    for (t, row) in confusion.iter().enumerate() {
        text += &format!("{t:>9}");
        for v in row {
            text += &format!("{v:>6}");
        }
        text.push('\n');
    }
    text
}
