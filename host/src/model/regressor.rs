//! The regressor of hint training: the conv that maps the student's guided layer onto the
//! teacher's hint layer, sized by the paper's rule.

use anyhow::{Context as _, ensure};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::backend::Backend;

use crate::model::NetConfig;
use crate::model::config::{Activation, LayerConfig};
use crate::model::net::{ConvLayer, materialize};

/// The regressor that maps the student's guided layer onto the teacher's hint layer:
/// a valid conv of kernel `N_g - N_h + 1` per axis with the hint layer's nonlinearity,
/// its maxout pieces or its ReLU (the paper's rule), unless the student's config
/// overrides kernel or pieces.
pub fn regressor_shape(student: &NetConfig, teacher: &NetConfig) -> anyhow::Result<RegressorShape> {
    let guided_name = student.guided.as_deref().with_context(|| format!("{} names no guided layer", student.name))?;
    let hint_name = teacher.hint.as_deref().with_context(|| format!("{} names no hint layer", teacher.name))?;
    let guided = student.layer_index(guided_name)?;
    let hint = teacher.layer_index(hint_name)?;
    let [gc, gh, gw] = student.shapes()?[guided];
    let [hc, hh, hw] = teacher.shapes()?[hint];
    ensure!(
        gh >= hh && gw >= hw || student.regressor.as_ref().and_then(|r| r.kernel).is_some(),
        "guided map {gh}x{gw} is smaller than the hint map {hh}x{hw}: set [regressor] kernel in {}",
        student.name
    );
    // The hint layer's nonlinearity: that of the last conv up to it (pooling keeps it).
    let (hint_pieces, relu) = teacher.layers[..=hint]
        .iter()
        .rev()
        .find_map(|l| match l {
            LayerConfig::Conv { pieces, activation, .. } => Some((*pieces, *activation == Activation::Relu)),
            _ => None,
        })
        .unwrap_or((1, false));
    let overrides =
        student.regressor.clone().unwrap_or(crate::model::config::RegressorConfig { kernel: None, pieces: None });
    let pieces = overrides.pieces.unwrap_or(hint_pieces);
    // A ReLU is only for a single piece (maxout is its own nonlinearity).
    let relu = relu && pieces == 1;
    let (kernel, padding) = match overrides.kernel {
        None => ([gh - hh + 1, gw - hw + 1], [0, 0]),
        Some(k) => {
            // Pad so that the output is exactly the hint's size.
            let pad = |g: usize, h: usize| -> anyhow::Result<usize> {
                let need = (h + k).checked_sub(g + 1).context("regressor kernel too small for these maps")?;
                ensure!(need % 2 == 0, "regressor kernel {k} cannot map {g} to {h} with symmetric padding");
                Ok(need / 2)
            };
            ([k, k], [pad(gh, hh)?, pad(gw, hw)?])
        }
    };
    Ok(RegressorShape { guided, hint, in_channels: gc, units: hc, pieces, relu, kernel, padding })
}

/// The regressor's geometry, from [`regressor_shape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegressorShape {
    /// Index of the guided layer in the student, of the hint layer in the teacher.
    pub guided: usize,
    pub hint: usize,
    pub in_channels: usize,
    pub units: usize,
    pub pieces: usize,
    /// A ReLU after the conv (a single piece, for a ReLU hint layer).
    pub relu: bool,
    /// `[height, width]`.
    pub kernel: [usize; 2],
    pub padding: [usize; 2],
}

impl RegressorShape {
    pub fn build<B: Backend>(&self, device: &B::Device) -> ConvLayer<B> {
        let [ph, pw] = self.padding;
        let conv = Conv2dConfig::new([self.in_channels, self.units * self.pieces], self.kernel)
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .init(device);
        let regressor = ConvLayer { conv, norm: None, pieces: self.pieces, relu: self.relu };
        materialize(&regressor);
        regressor
    }

    /// Trainable parameters of the regressor (dropped after hint training).
    pub fn params(&self) -> usize {
        let maps = self.units * self.pieces;
        self.in_channels * self.kernel[0] * self.kernel[1] * maps + maps
    }
}
