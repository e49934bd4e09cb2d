//! The splits of one experiment: training, validation and test images, normalized alike.

use crate::data::{Augment, Dataset, Normalization};
use crate::run::DataInfo;
use crate::run::dir::RunDir;
use crate::train::batch::Batcher;
use crate::train::phase::Phase;
use crate::train::schedule::Schedule;

/// The splits of one experiment.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub valid: Dataset,
    pub test: Dataset,
    pub info: DataInfo,
}

impl Splits {
    /// Holds out `valid` seeded training images, keeps a seeded sample of `subset` of the
    /// rest (all of them for `None`) and normalizes with the kept images' statistics.
    ///
    /// The split comes first, so the validation images of a sample are those of the
    /// whole set: a teacher trained on all images has not seen them either.
    pub fn new(
        train: &Dataset,
        test: Dataset,
        valid: usize,
        seed: u64,
        subset: Option<usize>,
    ) -> anyhow::Result<Splits> {
        let pixels_hash = crate::data::pixels_hash(train);
        let (mut train, valid) = train.split(valid, seed)?;
        if let Some(n) = subset {
            train = train.sample(n, seed);
        }
        let normalization = Normalization::of(&train);
        let info = DataInfo {
            name: crate::data::base_name(&train.name),
            content_hash: None,
            train_images: train.len(),
            valid_images: valid.len(),
            test_images: test.len(),
            split_seed: seed,
            normalization,
            classes: Vec::new(),
            images: None,
            pixels_hash: Some(pixels_hash),
        };
        Ok(Splits { train, valid, test, info })
    }

    pub fn batcher(&self, augment: Augment) -> Batcher {
        Batcher { normalization: self.info.normalization.clone(), augment }
    }

    /// A phase that trains on these splits to completion.
    pub fn phase<'a>(
        &'a self,
        name: &'a str,
        schedule: &'a Schedule,
        batcher: &'a Batcher,
        run: &'a RunDir,
    ) -> Phase<'a> {
        Phase { name, schedule, train: &self.train, valid: &self.valid, batcher, run, stop_after: None }
    }
}
