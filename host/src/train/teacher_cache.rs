//! The teacher's outputs for every training image, computed once.
//!
//! During KD and hint training the teacher only runs forward, without dropout, so its
//! answer for an image is the same in every epoch. Computing it once before the first
//! epoch removes the teacher's forward pass (for the MNIST teacher, 4x the FitNet's
//! multiplications) from every training step.
//!
//! Augmentation by translation and mirroring gives each image a finite set of
//! placements ([`Placement`]): `(2r + 1)²` translations within the reach `r`, each
//! mirrored or not. The cache can hold the teacher's logits for every placement of every
//! image, and each step then reads the entry of the placement its image was drawn at.
//! A teacher that averages mirror images gives the same logits, bit for bit, for an
//! image and its mirror, so for it the mirrored placements share their entries. Random
//! erasing has no such finite set, and the teacher then runs on every batch.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::batch::Batcher;
use crate::data::{Dataset, Placement};
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

/// The placements of an image a cache holds an entry for: every translation of at most
/// `reach` pixels along each axis and, when `mirrored`, each of them mirrored as well.
/// Without `mirrored`, a mirrored placement reads the entry of its unmirrored twin (for a
/// teacher whose logits are the same for both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placements {
    pub reach: i32,
    pub mirrored: bool,
}

impl Placements {
    /// Only the image as it is (and, for a mirror-averaging teacher, its mirror image).
    pub const IDENTITY: Placements = Placements { reach: 0, mirrored: false };

    /// Entries per image.
    pub fn count(self) -> usize {
        let side = (2 * self.reach + 1) as usize;
        side * side * if self.mirrored { 2 } else { 1 }
    }

    /// The entry of `placement`, in `0..count()`. Panics if it moves an image beyond
    /// `reach`: the augmentation and the cache disagree, a bug.
    fn index(self, placement: Placement) -> usize {
        let r = self.reach;
        assert!(
            placement.dy.abs() <= r && placement.dx.abs() <= r,
            "an image placed at {placement:?}, beyond the cache's reach of {r} pixels"
        );
        let side = 2 * r + 1;
        let translation = ((placement.dy + r) * side + placement.dx + r) as usize;
        if self.mirrored { 2 * translation + usize::from(placement.mirrored) } else { translation }
    }

    /// Every placement with an entry, in entry order.
    fn all(self) -> impl Iterator<Item = Placement> {
        let r = self.reach;
        let flips: &[bool] = if self.mirrored { &[false, true] } else { &[false] };
        (-r..=r).flat_map(move |dy| {
            (-r..=r).flat_map(move |dx| flips.iter().map(move |&mirrored| Placement { dy, dx, mirrored }))
        })
    }
}

/// The output of the teacher's first `layers` layers for each image of a dataset at
/// each of its [`Placements`], as maps `[C, H, W]` (logits are `[classes, 1, 1]`):
/// image after image, each image's placements in entry order.
#[derive(Clone, Debug)]
pub struct TeacherCache {
    item: [usize; 3],
    placements: Placements,
    values: Vec<f32>,
}

impl TeacherCache {
    /// Runs `teacher` over every image of `data` at every placement of `placements`.
    pub fn build<B: Backend>(
        teacher: &Net<B>,
        output: CachedOutput,
        data: &Dataset,
        batcher: &Batcher,
        placements: Placements,
        device: &B::Device,
    ) -> TeacherCache {
        let indices: Vec<usize> = (0..data.len()).collect();
        let mut item = [0; 3];
        let background = batcher.normalization.background();
        let count = placements.count();
        let mut values = Vec::new();
        for chunk in indices.chunks(CHUNK) {
            // One tensor per placement, then interleaved image by image.
            let mut outputs = Vec::with_capacity(count);
            for placement in placements.all() {
                let images = batcher.images_at::<B>(data, chunk, placement, device);
                let out = match output {
                    CachedOutput::Layers(layers) => teacher.forward_to(images, layers).map(),
                    CachedOutput::Logits { views } => {
                        Activations::Flat(teacher.predict(images, views, &background)).map()
                    }
                };
                let [_, c, h, w] = out.dims();
                item = [c, h, w];
                outputs.push(out.into_data().into_vec::<f32>().expect("float outputs"));
            }
            let len = item.iter().product::<usize>();
            for image in 0..chunk.len() {
                for out in &outputs {
                    values.extend_from_slice(&out[image * len..(image + 1) * len]);
                }
            }
        }
        TeacherCache { item, placements, values }
    }

    /// Bytes the cache holds.
    pub fn bytes(&self) -> usize {
        self.values.len() * size_of::<f32>()
    }

    /// The placements the cache holds entries for.
    pub fn placements(&self) -> Placements {
        self.placements
    }

    /// The cached outputs of images `indices`, each at its placement, `[N, C, H, W]`.
    /// Panics if `placements` is not one per image or one is beyond the cache's reach.
    pub fn gather<B: Backend>(&self, indices: &[usize], placements: &[Placement], device: &B::Device) -> Tensor<B, 4> {
        assert_eq!(indices.len(), placements.len(), "one placement per image");
        let len: usize = self.item.iter().product();
        let count = self.placements.count();
        let mut out = Vec::with_capacity(indices.len() * len);
        for (&i, &placement) in indices.iter().zip(placements) {
            let entry = i * count + self.placements.index(placement);
            out.extend_from_slice(&self.values[entry * len..(entry + 1) * len]);
        }
        let [c, h, w] = self.item;
        Tensor::from_data(TensorData::new(out, [indices.len(), c, h, w]), device)
    }
}
