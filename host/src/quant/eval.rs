//! Evaluation of an int8 blob with `shared`'s kernels, the very code the device runs,
//! in parallel over images; and the float predictions it is compared with.

use anyhow::ensure;
use burn::tensor::backend::Backend;
use fitnets_shared::{Model, plan, run};
use rayon::prelude::*;

use super::float::{FloatModel, normalize};
use crate::data::{Augment, Dataset, Normalization};
use crate::model::Net;
use crate::train::batch::Batcher;

/// Predictions on a labelled set and what they score.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The predicted class of every image, in order.
    pub predictions: Vec<u16>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    pub accuracy: f64,
}

impl Evaluation {
    /// Scores `predictions` against the labels of `data`; `classes` sizes the matrix.
    pub fn new(predictions: Vec<u16>, data: &Dataset, classes: usize) -> Evaluation {
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&p, &label) in predictions.iter().zip(&data.labels) {
            confusion[usize::from(label)][usize::from(p)] += 1;
        }
        let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
        let accuracy = correct as f64 / predictions.len().max(1) as f64;
        Evaluation { predictions, confusion, accuracy }
    }
}

/// Classifies every image of `data` with `model` through [`fitnets_shared::run()`], one
/// exact arena per worker thread.
pub fn evaluate_int8(model: &Model<'_>, data: &Dataset) -> anyhow::Result<Evaluation> {
    let shape = model.input_shape();
    let model_dims = [usize::from(shape.height), usize::from(shape.width), usize::from(shape.channels)];
    ensure!(
        model_dims == [data.height, data.width, data.channels],
        "the model takes {}x{}x{} images, {} has {}x{}x{}",
        model_dims[0],
        model_dims[1],
        model_dims[2],
        data.name,
        data.height,
        data.width,
        data.channels
    );
    let classes = usize::from(model.classes());
    ensure!(data.classes <= classes, "{} has {} classes, the model {classes}", data.name, data.classes);
    let arena = plan::arena_bytes(model) as usize;
    let predictions = (0..data.len())
        .into_par_iter()
        .map_init(|| vec![0u8; arena], |arena, i| run(model, data.image(i), arena).map(|p| p.class))
        .collect::<Result<Vec<u16>, _>>()?;
    Ok(Evaluation::new(predictions, data, classes))
}

/// The classes the plain float model predicts for every image, in parallel.
pub fn float_model_predictions(model: &FloatModel, normalization: &Normalization, data: &Dataset) -> Vec<u16> {
    (0..data.len())
        .into_par_iter()
        .map(|i| {
            let mut x = vec![0f32; data.image_len()];
            normalize(data.image(i), normalization, &mut x);
            argmax(&model.forward(&x, |_, _| {})) as u16
        })
        .collect()
}

/// The classes the trained burn network predicts for every image.
pub fn net_predictions<B: Backend>(
    net: &Net<B>,
    data: &Dataset,
    normalization: &Normalization,
    device: &B::Device,
) -> Vec<u16> {
    let batcher = Batcher { normalization: normalization.clone(), augment: Augment::default() };
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut predictions = Vec::with_capacity(data.len());
    for chunk in indices.chunks(512) {
        let images = batcher.images::<B>(data, chunk, None, device);
        let predicted = net.forward(images).argmax(1).into_data();
        predictions.extend(predicted.iter::<i64>().map(|p| p as u16));
    }
    predictions
}

/// The share of positions where `a` and `b` agree (1 when both are empty).
pub fn agreement(a: &[u16], b: &[u16]) -> f64 {
    assert_eq!(a.len(), b.len(), "predictions of different sets");
    if a.is_empty() {
        return 1.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// The first index of the largest value.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// A blob's input as `[height, width, channels]`.
pub fn model_input(model: &Model<'_>) -> [usize; 3] {
    let shape = model.input_shape();
    [usize::from(shape.height), usize::from(shape.width), usize::from(shape.channels)]
}
