//! The optimizer of a phase behind one type, and the record format its state and the
//! model's are saved in.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, RmsProp, RmsPropConfig};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;

use super::phase::Trainee;
use super::schedule::OptimizerKind;

pub(super) type Recorder32 = BinFileRecorder<FullPrecisionSettings>;

/// The optimizer of a phase, behind one type.
#[derive(Clone)]
pub(super) enum Optim<B: AutodiffBackend> {
    RmsProp(OptimizerAdaptor<RmsProp, Trainee<B>, B>),
    Adam(OptimizerAdaptor<Adam, Trainee<B>, B>),
}

impl<B: AutodiffBackend> Optim<B> {
    pub(super) fn new(kind: OptimizerKind) -> Optim<B> {
        match kind {
            OptimizerKind::Rmsprop => {
                Optim::RmsProp(RmsPropConfig::new().with_alpha(0.99).with_momentum(0.0).with_epsilon(1e-8).init())
            }
            OptimizerKind::Adam => Optim::Adam(AdamConfig::new().with_epsilon(1e-8).init()),
        }
    }

    pub(super) fn step(&mut self, lr: f64, model: Trainee<B>, grads: GradientsParams) -> Trainee<B> {
        match self {
            Optim::RmsProp(o) => o.step(lr, model, grads),
            Optim::Adam(o) => o.step(lr, model, grads),
        }
    }

    pub(super) fn save(&self, path: std::path::PathBuf) -> anyhow::Result<()> {
        let recorder = Recorder32::new();
        match self {
            Optim::RmsProp(o) => recorder.record(o.to_record(), path)?,
            Optim::Adam(o) => recorder.record(o.to_record(), path)?,
        }
        Ok(())
    }

    pub(super) fn load(self, path: std::path::PathBuf, device: &B::Device) -> anyhow::Result<Optim<B>> {
        let recorder = Recorder32::new();
        Ok(match self {
            Optim::RmsProp(o) => Optim::RmsProp(o.load_record(recorder.load(path, device)?)),
            Optim::Adam(o) => Optim::Adam(o.load_record(recorder.load(path, device)?)),
        })
    }
}
