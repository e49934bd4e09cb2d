//! The kernels of [`super::conv`], [`super::norm`] and [`super::pool`] as burn-flex
//! operations: forward-only ones for `Flex` and ones with their own backward step for
//! `Autodiff<Flex>`.

use std::fmt;
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::backend::BackendTypes;
use burn::tensor::{TensorData, TensorMetadata};

use super::conv;
use super::geometry::ConvGeometry;
use super::norm::{self, NormGeometry};
use super::pool::{self, PoolGeometry};
use crate::backend::Flex;

/// A float tensor of `Autodiff<Flex>`: the inner tensor and its place in the graph.
pub type AutodiffFlexTensor = <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive;

/// The values of a float tensor, contiguous.
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous").to_vec()),
    }
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `[N, O/k, H', W']` and the maxout winners, for `x` `[N, C, H, W]`.
fn forward(g: &ConvGeometry, x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> (FlexTensor, Vec<u8>) {
    let images = x.shape().dims::<4>()[0];
    let (y, winners) = conv::forward(g, &values(x), &values(weight), &values(bias));
    (tensor(y, [images, g.units(), g.output[0], g.output[1]]), winners)
}

/// The fused conv + maxout on `Flex`, without gradients.
pub fn conv_maxout(g: &ConvGeometry, x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
    forward(g, &x, &weight, &bias).0
}

/// What the backward step keeps from the forward pass.
#[derive(Clone)]
struct Saved {
    geometry: ConvGeometry,
    x: FlexTensor,
    weight: FlexTensor,
    winners: Arc<Vec<u8>>,
}

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved").field("geometry", &self.geometry).finish_non_exhaustive()
    }
}

/// The backward step of the fused conv + maxout: parents `[x, weight, bias]`.
#[derive(Debug)]
struct ConvMaxoutBackward;

impl Backward<Flex, 3> for ConvMaxoutBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let Saved { geometry: g, x, weight, winners } = ops.state;
        let (dx, dweight, dbias) =
            conv::backward(&g, &values(&x), &values(&weight), &values(&dy), &winners, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, x.shape().dims::<4>()));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, tensor(dweight, weight.shape().dims::<4>()));
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbias, [g.outputs])));
        }
    }
}

/// The fused conv + maxout on `Autodiff<Flex>`: its backward step is
/// [`conv::backward`], not burn's generic conv gradients.
pub fn conv_maxout_autodiff(
    g: &ConvGeometry,
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
) -> AutodiffFlexTensor {
    let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
    match ConvMaxoutBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (y, winners) = forward(g, &x.primitive, &weight.primitive, &bias.primitive);
            let saved = Saved { geometry: *g, x: x.primitive, weight: weight.primitive, winners: Arc::new(winners) };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(conv_maxout(g, x.primitive, weight.primitive, bias.primitive)),
    }
}

/// `[N, C, H', W']` and the winning positions, for `x` `[N, C, H, W]`.
fn pool_forward(g: &PoolGeometry, x: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let [n, c, _, _] = x.shape().dims::<4>();
    let (y, at) = pool::forward(g, &values(x));
    (tensor(y, [n, c, g.output[0], g.output[1]]), at)
}

/// Max pooling on `Flex`, without gradients.
pub fn max_pool(g: &PoolGeometry, x: FlexTensor) -> FlexTensor {
    pool_forward(g, &x).0
}

/// What the pooling's backward step keeps: the input shape and the winners.
#[derive(Clone)]
struct PoolSaved {
    geometry: PoolGeometry,
    input: [usize; 4],
    at: Arc<Vec<u32>>,
}

impl fmt::Debug for PoolSaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSaved")
            .field("geometry", &self.geometry)
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// The backward step of max pooling: parent `[x]`.
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = PoolSaved;

    fn backward(self, ops: Ops<PoolSaved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let PoolSaved { geometry, input, at } = ops.state;
            grads.register::<Flex>(node.id, tensor(pool::backward(&geometry, &values(&dy), &at), input));
        }
    }
}

/// Max pooling on `Autodiff<Flex>` with [`pool::backward`] as its backward step.
pub fn max_pool_autodiff(g: &PoolGeometry, x: AutodiffFlexTensor) -> AutodiffFlexTensor {
    match MaxPoolBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (y, at) = pool_forward(g, &x.primitive);
            let input = x.primitive.shape().dims::<4>();
            prep.finish(PoolSaved { geometry: *g, input, at: Arc::new(at) }, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(max_pool(g, x.primitive)),
    }
}

/// Batch norm + maxout on `Flex`, in inference mode (the running statistics).
pub fn norm_maxout(
    g: &NormGeometry,
    z: FlexTensor,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> FlexTensor {
    let [n, _, h, w] = z.shape().dims::<4>();
    tensor(norm::forward_inference(g, &values(&z), gamma, beta, mean, var), [n, g.units(), h, w])
}

/// What the batch norm's backward step keeps from the forward pass.
#[derive(Clone)]
struct NormSaved {
    geometry: NormGeometry,
    state: Arc<norm::State>,
    gamma: Arc<Vec<f32>>,
}

impl fmt::Debug for NormSaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormSaved").field("geometry", &self.geometry).finish_non_exhaustive()
    }
}

/// The backward step of batch norm + maxout in training mode: parents `[z, γ, β]`.
#[derive(Debug)]
struct NormMaxoutBackward;

impl Backward<Flex, 3> for NormMaxoutBackward {
    type State = NormSaved;

    fn backward(self, ops: Ops<NormSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_z, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let NormSaved { geometry: g, state, gamma } = ops.state;
        let (dz, dgamma, dbeta) = norm::backward(&g, &state, &gamma, &values(&dy));
        let [n, _, h, w] = dy.shape().dims::<4>();
        if let Some(node) = node_z {
            grads.register::<Flex>(node.id, tensor(dz, [n, g.channels, h, w]));
        }
        for (node, values) in [(node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(values, [g.channels])));
            }
        }
    }
}

/// Batch norm + maxout on `Autodiff<Flex>`, in training mode (the batch's own
/// statistics), with [`norm::backward`] as its backward step. Also gives the batch's
/// mean and biased variance per channel, for the running statistics.
pub fn norm_maxout_autodiff(
    g: &NormGeometry,
    z: AutodiffFlexTensor,
    gamma: AutodiffFlexTensor,
    beta: AutodiffFlexTensor,
) -> (AutodiffFlexTensor, Vec<f32>, Vec<f32>) {
    let [n, _, h, w] = z.primitive.shape().dims::<4>();
    let gamma_values = values(&gamma.primitive).into_owned();
    let norm::Trained { output, mean, variance, state } =
        norm::forward_train(g, &values(&z.primitive), &gamma_values, &values(&beta.primitive));
    let output = tensor(output, [n, g.units(), h, w]);
    let nodes = [z.node.clone(), gamma.node.clone(), beta.node.clone()];
    let y = match NormMaxoutBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let saved = NormSaved { geometry: *g, state: Arc::new(state), gamma: Arc::new(gamma_values) };
            prep.finish(saved, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    (y, mean, variance)
}
