//! Turning images of a [`Dataset`] into normalized NCHW tensors.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::data::{Augment, Dataset, Normalization};

/// Normalization and augmentation of one run.
#[derive(Clone, Debug)]
pub struct Batcher {
    pub normalization: Normalization,
    pub augment: Augment,
}

impl Batcher {
    /// Images `indices` of `data` as `[N, C, H, W]`, augmented with `rng` when given.
    pub fn images<B: Backend>(
        &self,
        data: &Dataset,
        indices: &[usize],
        mut rng: Option<&mut ChaCha8Rng>,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let (h, w, c) = (data.height, data.width, data.channels);
        let len = data.image_len();
        let mut values = vec![0f32; indices.len() * len];
        let mut augmented = vec![0u8; len];
        for (&i, out) in indices.iter().zip(values.chunks_exact_mut(len)) {
            let image = match rng.as_deref_mut() {
                Some(rng) if !self.augment.is_identity() => {
                    self.augment.apply(data.image(i), h, w, c, rng, &mut augmented);
                    &augmented[..]
                }
                _ => data.image(i),
            };
            self.normalization.apply(image, c, out);
        }
        Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device)
    }

    /// Labels `indices` of `data` as `[N]`.
    pub fn labels<B: Backend>(&self, data: &Dataset, indices: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
        let labels: Vec<i64> = indices.iter().map(|&i| i64::from(data.labels[i])).collect();
        Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
    }
}
