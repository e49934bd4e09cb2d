//! Turning images of a [`Dataset`] into normalized NCHW tensors.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::data::{Augment, Dataset, Normalization, Placement};

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
        rng: Option<&mut ChaCha8Rng>,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        self.placed_images(data, indices, rng, device).0
    }

    /// As [`Batcher::images`], with where each image was placed (all at
    /// [`Placement::IDENTITY`] without augmentation).
    pub fn placed_images<B: Backend>(
        &self,
        data: &Dataset,
        indices: &[usize],
        mut rng: Option<&mut ChaCha8Rng>,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Vec<Placement>) {
        let mut placements = Vec::with_capacity(indices.len());
        let images = self.build(data, indices, device, |image, out| match rng.as_deref_mut() {
            Some(rng) if !self.augment.is_identity() => {
                placements.push(self.augment.apply(image, data.height, data.width, data.channels, rng, out));
                true
            }
            _ => {
                placements.push(Placement::IDENTITY);
                false
            }
        });
        (images, placements)
    }

    /// Images `indices` of `data`, each placed at `placement` (as augmentation would
    /// have placed it), as `[N, C, H, W]`.
    pub fn images_at<B: Backend>(
        &self,
        data: &Dataset,
        indices: &[usize],
        placement: Placement,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let identity = placement == Placement::IDENTITY;
        self.build(data, indices, device, |image, out| {
            if !identity {
                placement.apply(image, data.height, data.width, data.channels, out);
            }
            !identity
        })
    }

    /// Normalizes images `indices` of `data` into a tensor; `place(image, out)` may write
    /// a changed copy of each image into `out` and returns whether it did.
    fn build<B: Backend>(
        &self,
        data: &Dataset,
        indices: &[usize],
        device: &B::Device,
        mut place: impl FnMut(&[u8], &mut [u8]) -> bool,
    ) -> Tensor<B, 4> {
        let (h, w, c) = (data.height, data.width, data.channels);
        let len = data.image_len();
        let mut values = vec![0f32; indices.len() * len];
        let mut placed = vec![0u8; len];
        for (&i, out) in indices.iter().zip(values.chunks_exact_mut(len)) {
            let image = if place(data.image(i), &mut placed) { &placed[..] } else { data.image(i) };
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
