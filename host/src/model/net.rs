//! A network built from a [`NetConfig`]: maxout convs, pooling, dropout, dense layers.
//!
//! Tensors are NCHW as burn lays them out. A maxout layer with `k` pieces computes
//! `units * k` channels; channels `g*k .. (g+1)*k` are the pieces of unit `g`
//! (unit-major, the layout `shared` uses), and the unit keeps their maximum.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use super::config::{Activation, LayerConfig, NetConfig};
use super::views::{Views, translate};

/// A conv with optional batch norm, then maxout over `pieces` or an activation.
#[derive(Module, Debug)]
pub struct ConvLayer<B: Backend> {
    pub conv: Conv2d<B>,
    pub norm: Option<BatchNorm<B>>,
    pub pieces: usize,
    pub relu: bool,
}

/// A fully connected layer, then maxout over `pieces` or an activation.
#[derive(Module, Debug)]
pub struct DenseLayer<B: Backend> {
    pub linear: Linear<B>,
    pub pieces: usize,
    pub relu: bool,
}

/// One layer. The variants differ in size, but a network holds only a handful of them.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer<B: Backend> {
    Conv(ConvLayer<B>),
    Pool(MaxPool2d),
    Dropout(Dropout),
    Dense(DenseLayer<B>),
}

/// The whole network: its layers in order.
#[derive(Module, Debug)]
pub struct Net<B: Backend> {
    pub layers: Vec<Layer<B>>,
}

/// An activation between layers: a feature map `[N, C, H, W]` or, after a dense layer,
/// a matrix `[N, F]`.
#[derive(Clone, Debug)]
pub enum Activations<B: Backend> {
    Map(Tensor<B, 4>),
    Flat(Tensor<B, 2>),
}

impl<B: Backend> Activations<B> {
    /// `[N, F]`, flattening a map channel-major.
    pub fn flat(self) -> Tensor<B, 2> {
        match self {
            Activations::Flat(x) => x,
            Activations::Map(x) => x.flatten(1, 3),
        }
    }

    /// The feature map; a flat activation becomes `[N, F, 1, 1]`.
    pub fn map(self) -> Tensor<B, 4> {
        match self {
            Activations::Map(x) => x,
            Activations::Flat(x) => {
                let [n, f] = x.dims();
                x.reshape([n, f, 1, 1])
            }
        }
    }
}

/// Maxout over channel groups: `[N, G*k, H, W]` to `[N, G, H, W]`.
pub fn maxout_map<B: Backend>(x: Tensor<B, 4>, pieces: usize) -> Tensor<B, 4> {
    if pieces == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    x.reshape([n, c / pieces, pieces, h * w]).max_dim(2).reshape([n, c / pieces, h, w])
}

/// Maxout over feature groups: `[N, G*k]` to `[N, G]`.
pub fn maxout_flat<B: Backend>(x: Tensor<B, 2>, pieces: usize) -> Tensor<B, 2> {
    if pieces == 1 {
        return x;
    }
    let [n, f] = x.dims();
    x.reshape([n, f / pieces, pieces]).max_dim(2).reshape([n, f / pieces])
}

impl<B: Backend> ConvLayer<B> {
    /// `[N, C, H, W]` to `[N, units, H', W']`: through the CPU kernels of
    /// [`kernels`](crate::kernels) where the backend has them, else burn's ops. With
    /// batch norm, which sits between the conv and maxout, one kernel computes the conv
    /// alone (one piece per unit) and another the batch norm and maxout.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = match &self.norm {
            None => crate::kernels::conv_maxout(&self.conv, self.pieces, x),
            Some(norm) => match crate::kernels::conv_maxout(&self.conv, 1, x) {
                Ok(z) => Ok(crate::kernels::norm_maxout(norm, self.pieces, z)
                    .unwrap_or_else(|z| maxout_map(norm.forward(z), self.pieces))),
                Err(x) => Err(x),
            },
        };
        match y {
            Ok(y) if self.relu => relu(y),
            Ok(y) => y,
            Err(x) => self.forward_with_burn(x),
        }
    }

    /// The same function as [`ConvLayer::forward`] from burn's own ops, on any backend.
    pub fn forward_with_burn(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut y = self.conv.forward(x);
        if let Some(norm) = &self.norm {
            y = norm.forward(y);
        }
        y = maxout_map(y, self.pieces);
        if self.relu { relu(y) } else { y }
    }
}

impl<B: Backend> Layer<B> {
    pub fn forward(&self, x: Activations<B>) -> Activations<B> {
        match self {
            Layer::Conv(layer) => Activations::Map(layer.forward(x.map())),
            Layer::Pool(pool) => Activations::Map(match crate::kernels::max_pool(pool, x.map()) {
                Ok(y) => y,
                Err(x) => pool.forward(x),
            }),
            Layer::Dropout(dropout) => match x {
                Activations::Map(x) => Activations::Map(dropout.forward(x)),
                Activations::Flat(x) => Activations::Flat(dropout.forward(x)),
            },
            Layer::Dense(layer) => {
                let y = maxout_flat(layer.linear.forward(x.flat()), layer.pieces);
                Activations::Flat(if layer.relu { relu(y) } else { y })
            }
        }
    }
}

impl<B: Backend> Net<B> {
    /// Builds the layers of `config` with fresh parameters on `device`, drawn now from
    /// the backend's generator (see [`materialize`]).
    pub fn new(config: &NetConfig, device: &B::Device) -> anyhow::Result<Net<B>> {
        let shapes = config.shapes()?;
        let mut channels = config.input[2];
        let mut spatial = [config.input[0], config.input[1]];
        let mut features = channels * spatial[0] * spatial[1];
        let mut layers = Vec::with_capacity(config.layers.len());
        for (layer, shape) in config.layers.iter().zip(&shapes) {
            layers.push(match *layer {
                LayerConfig::Conv { units, pieces, kernel, stride, padding, activation, batch_norm, .. } => {
                    let (pt, pb) = padding.amounts(spatial[0], kernel, stride);
                    let (pl, pr) = padding.amounts(spatial[1], kernel, stride);
                    let conv = Conv2dConfig::new([channels, units * pieces], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(pt, pl, pb, pr))
                        .init(device);
                    let norm = batch_norm.then(|| BatchNormConfig::new(units * pieces).init(device));
                    Layer::Conv(ConvLayer { conv, norm, pieces, relu: activation == Activation::Relu })
                }
                LayerConfig::MaxPool { kernel, stride, padding, ceil, .. } => {
                    let stride = stride.unwrap_or(kernel);
                    Layer::Pool(
                        MaxPool2dConfig::new([kernel, kernel])
                            .with_strides([stride, stride])
                            .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
                            .with_ceil_mode(ceil)
                            .init(),
                    )
                }
                LayerConfig::Dropout { p, .. } => Layer::Dropout(DropoutConfig::new(p).init()),
                LayerConfig::Dense { units, pieces, activation, .. } => Layer::Dense(DenseLayer {
                    linear: LinearConfig::new(features, units * pieces).init(device),
                    pieces,
                    relu: activation == Activation::Relu,
                }),
            });
            [channels, spatial[0], spatial[1]] = *shape;
            features = channels * spatial[0] * spatial[1];
        }
        let net = Net { layers };
        materialize(&net);
        Ok(net)
    }

    /// The logits `[N, classes]` of a batch `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_to(x, self.layers.len()).flat()
    }

    /// Logits for classification: the mean of [`Net::forward`] over the `views` of each
    /// image (test-time augmentation, for a network trained on such views; it costs
    /// [`Views::count`] forward passes). `background` is the normalized value of a zero
    /// pixel per channel, what a shifted view moves in from outside the image.
    ///
    /// With plain views this is exactly [`Net::forward`]; with mirror images only, the
    /// mean of the two logits.
    pub fn predict(&self, x: Tensor<B, 4>, views: Views, background: &[f32]) -> Tensor<B, 2> {
        if views.is_plain() {
            return self.forward(x);
        }
        // The logits of a view, plus its mirror image's when asked.
        let pair = |dy, dx| {
            let view = translate(x.clone(), dy, dx, background);
            let logits = self.forward(view.clone());
            if views.mirror { logits + self.forward(view.flip([3])) } else { logits }
        };
        let mut sum = pair(0, 0);
        if views.shift {
            // Mirroring an image swaps its left and right shifts: summed as one term they
            // make the mean of an image and of its mirror image equal bit for bit.
            sum = sum + pair(-1, 0) + pair(1, 0) + (pair(0, -1) + pair(0, 1));
        }
        sum.div_scalar(views.count() as f64)
    }

    /// The output of the first `count` layers (a hint or guided layer is `index + 1`).
    pub fn forward_to(&self, x: Tensor<B, 4>, count: usize) -> Activations<B> {
        self.layers[..count].iter().fold(Activations::Map(x), |x, layer| layer.forward(x))
    }
}

/// Draws the initial values of every parameter of `module` now, in the module's order.
///
/// burn initializes a parameter lazily, on its first use, from the backend's generator as
/// it is then. Drawn at once, a network's initial weights depend only on the seed set
/// before it was built, not on what runs before its first forward pass (an epoch's
/// seed, another training phase, a checkpoint, another thread); so students trained by
/// different methods from one seed start from the same weights.
pub fn materialize<B: Backend, M: Module<B>>(module: &M) {
    struct Draw;
    impl<B: Backend> ModuleVisitor<B> for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Draw);
}
