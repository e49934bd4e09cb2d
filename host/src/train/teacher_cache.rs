//! The teacher's outputs for every training image, computed once.
//!
//! During KD and hint training the teacher only runs forward, without dropout, so when
//! the student sees each image unchanged (no augmentation) the teacher's answer for an
//! image is the same in every epoch. Computing it once before the first epoch removes
//! the teacher's forward pass (for the MNIST teacher, 4x the FitNet's multiplications)
//! from every training step. With augmentation every step sees a new image and the
//! teacher runs on it as before, except where the teacher's answer cannot change: a
//! teacher that averages mirror images gives the same logits for an image and its mirror.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::batch::Batcher;
use crate::data::Dataset;
use crate::model::Views;
use crate::model::net::{Activations, Net};

/// Images per teacher forward pass while filling the cache.
const CHUNK: usize = 512;

/// Which output of the teacher a cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachedOutput {
    /// The output of the first N layers (a hint layer is its index + 1).
    Layers(usize),
    /// The logits of [`Net::predict`].
    Logits { views: Views },
}

/// The output of the teacher's first `layers` layers for each image of a dataset, as
/// maps `[C, H, W]` (logits are `[classes, 1, 1]`), image after image.
#[derive(Clone, Debug)]
pub struct TeacherCache {
    item: [usize; 3],
    values: Vec<f32>,
}

impl TeacherCache {
    /// Runs `teacher` over every image of `data` once (un-augmented, as the student
    /// will see them).
    pub fn build<B: Backend>(
        teacher: &Net<B>,
        output: CachedOutput,
        data: &Dataset,
        batcher: &Batcher,
        device: &B::Device,
    ) -> TeacherCache {
        let indices: Vec<usize> = (0..data.len()).collect();
        let mut item = [0; 3];
        let mut values = Vec::new();
        let background = batcher.normalization.background();
        for chunk in indices.chunks(CHUNK) {
            let images = batcher.images::<B>(data, chunk, None, device);
            let out = match output {
                CachedOutput::Layers(layers) => teacher.forward_to(images, layers).map(),
                CachedOutput::Logits { views } => Activations::Flat(teacher.predict(images, views, &background)).map(),
            };
            let [_, c, h, w] = out.dims();
            item = [c, h, w];
            values.extend(out.into_data().into_vec::<f32>().expect("float outputs"));
        }
        TeacherCache { item, values }
    }

    /// Bytes the cache holds.
    pub fn bytes(&self) -> usize {
        self.values.len() * size_of::<f32>()
    }

    /// The cached outputs of images `indices`, `[N, C, H, W]`.
    pub fn gather<B: Backend>(&self, indices: &[usize], device: &B::Device) -> Tensor<B, 4> {
        let len: usize = self.item.iter().product();
        let mut out = Vec::with_capacity(indices.len() * len);
        for &i in indices {
            out.extend_from_slice(&self.values[i * len..(i + 1) * len]);
        }
        let [c, h, w] = self.item;
        Tensor::from_data(TensorData::new(out, [indices.len(), c, h, w]), device)
    }
}
