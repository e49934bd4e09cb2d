//! Hand-written CPU kernels for the layers that dominate training: a convolution
//! followed by maxout, batch norm followed by maxout, and max pooling.
//!
//! burn's autodiff computes a conv's gradients with a transposed conv (input) and a
//! conv over the batch (weights), and maxout's with a scatter; on burn-flex that made
//! the backward pass 3–8x the forward (see `docs/benchmarks.md`). [`conv`] does the
//! whole layer as matrix products over the im2col columns, with maxout fused in (or, for
//! a window nearly as large as its input, as products with dense matrices, one per
//! output row: [`unrolled`]), and [`flex`] plugs it into burn-flex, with and without
//! autodiff, as an operation with its own backward step.
//!
//! [`max_pool`] replaces burn-flex's pooling, whose forward pass took 9–13 % of a
//! teacher epoch; [`norm_maxout`] burn's batch norm, whose strided broadcasts made a
//! teacher with batch norm train about 6x slower than one without ([`norm`]).
//!
//! [`conv_maxout`], [`norm_maxout`] and [`max_pool`] are the entry points: generic over
//! the backend, they take the fast path on `Flex` and `Autodiff<Flex>` and hand the
//! input back on any other backend
//! (ndarray, CUDA), whose caller then uses burn's own ops. The two paths compute the
//! same function; `host/tests/kernels.rs` checks outputs and gradients against each
//! other.

pub mod conv;
pub mod flex;
pub mod geometry;
mod matmul;
pub mod norm;
pub mod pool;
pub mod unrolled;
pub mod vector;

use std::any::{Any, TypeId};

use burn::backend::Autodiff;
use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};

pub use geometry::ConvGeometry;
pub use norm::NormGeometry;
pub use pool::PoolGeometry;

use crate::backend::Flex;

/// The float primitive of a tensor (training tensors are never quantized).
fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> B::FloatTensorPrimitive {
    match t.into_primitive() {
        TensorPrimitive::Float(t) => t,
        TensorPrimitive::QFloat(_) => unreachable!("training tensors are not quantized"),
    }
}

/// `value` as a `U` if `T` is `U`.
fn cast<T: 'static, U: 'static>(value: T) -> Option<U> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>().and_then(Option::take)
}

/// The geometry of `conv` on an input `[N, C, H, W]` followed by maxout over `pieces`,
/// if the fused kernel supports it: bias present, no groups, no dilation, explicit or
/// no padding.
pub fn geometry<B: Backend>(conv: &Conv2d<B>, input: [usize; 4], pieces: usize) -> Option<ConvGeometry> {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Same => return None,
    };
    if conv.bias.is_none() || conv.groups != 1 || conv.dilation != [1, 1] {
        return None;
    }
    let [outputs, channels, _, _] = conv.weight.dims();
    let [_, c, h, w] = input;
    if channels != c {
        return None;
    }
    ConvGeometry::new([c, h, w], outputs, pieces, conv.kernel_size, conv.stride, padding)
}

/// `maxout(conv(x))` through the fused kernel where the backend has it; `Err(x)`
/// otherwise (or when [`geometry()`] rejects the layer).
pub fn conv_maxout<B: Backend>(conv: &Conv2d<B>, pieces: usize, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let autodiff = TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>();
    if !autodiff && TypeId::of::<B>() != TypeId::of::<Flex>() {
        return Err(x);
    }
    let Some(g) = geometry(conv, x.dims(), pieces) else { return Err(x) };
    let bias = primitive(conv.bias.as_ref().expect("geometry checked the bias").val());
    let (x, weight) = (primitive(x), primitive(conv.weight.val()));
    // `B` is one of the two backends checked above, so each cast succeeds.
    let same = "the backend's own tensor type";
    let output = if autodiff {
        let y =
            flex::conv_maxout_autodiff(&g, cast(x).expect(same), cast(weight).expect(same), cast(bias).expect(same));
        cast(y).expect(same)
    } else {
        let y = flex::conv_maxout(&g, cast(x).expect(same), cast(weight).expect(same), cast(bias).expect(same));
        cast(y).expect(same)
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(output)))
}

/// The geometry of `pool` on an input `[N, C, H, W]`, if [`pool`] supports it:
/// symmetric explicit or no padding, no dilation.
pub fn pool_geometry(pool: &MaxPool2d, input: [usize; 4]) -> Option<PoolGeometry> {
    let padding = match pool.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        PaddingConfig2d::Valid => [0, 0],
        _ => return None,
    };
    if pool.dilation != [1, 1] {
        return None;
    }
    PoolGeometry::new([input[2], input[3]], pool.kernel_size, pool.stride, padding, pool.ceil_mode)
}

/// `pool(x)` through [`pool`]'s kernel where the backend has it; `Err(x)` otherwise.
pub fn max_pool<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let autodiff = TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>();
    if !autodiff && TypeId::of::<B>() != TypeId::of::<Flex>() {
        return Err(x);
    }
    let Some(g) = pool_geometry(pool, x.dims()) else { return Err(x) };
    let x = primitive(x);
    let same = "the backend's own tensor type";
    let output = if autodiff {
        cast(flex::max_pool_autodiff(&g, cast(x).expect(same))).expect(same)
    } else {
        cast(flex::max_pool(&g, cast(x).expect(same))).expect(same)
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(output)))
}

/// `maxout(norm(z))` through [`norm`]'s kernel where the backend has it; `Err(z)`
/// otherwise. As burn's `BatchNorm`: with autodiff (training) it normalizes with the
/// batch's statistics and moves `norm`'s running ones towards them by its momentum;
/// without, it normalizes with the running ones.
pub fn norm_maxout<B: Backend>(
    norm: &BatchNorm<B>,
    pieces: usize,
    z: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let autodiff = TypeId::of::<B>() == TypeId::of::<Autodiff<Flex>>();
    if !autodiff && TypeId::of::<B>() != TypeId::of::<Flex>() {
        return Err(z);
    }
    let [.., channels] = norm.gamma.dims();
    let Some(g) = NormGeometry::new(z.dims(), pieces, norm.epsilon).filter(|g| g.channels == channels) else {
        return Err(z);
    };
    let device = z.device();
    let vector = |t: Tensor<B, 1>| t.into_data().into_vec::<f32>().expect("float parameters");
    let same = "the backend's own tensor type";
    let output = if autodiff {
        let (y, mean, variance) = flex::norm_maxout_autodiff(
            &g,
            cast(primitive(z)).expect(same),
            cast(primitive(norm.gamma.val())).expect(same),
            cast(primitive(norm.beta.val())).expect(same),
        );
        let momentum = norm.momentum;
        let update = |state: &RunningState<Tensor<B, 1>>, batch: Vec<f32>| {
            let batch = Tensor::<B, 1>::from_data(TensorData::new(batch, [channels]), &device);
            let running = state.value_sync().to_device(&device);
            state.update(running.mul_scalar(1.0 - momentum).add(batch.mul_scalar(momentum)).detach());
        };
        update(&norm.running_mean, mean);
        update(&norm.running_var, variance);
        cast(y).expect(same)
    } else {
        let [gamma, beta] = [norm.gamma.val(), norm.beta.val()].map(vector);
        let [mean, var] = [norm.running_mean.value(), norm.running_var.value()].map(vector);
        cast(flex::norm_maxout(&g, cast(primitive(z)).expect(same), &gamma, &beta, &mean, &var)).expect(same)
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(output)))
}
