//! A model's gradients as one flat `f32` buffer and back: what [`super::collective`]
//! sums across peers.
//!
//! The layout is the model's parameters in visiting order (the order of its fields,
//! the same on every replica of one network), each parameter's gradient row-major; a
//! parameter without a gradient (a frozen one, or one the loss did not reach) takes no
//! room and gets none back. Every replica of one network built from one config lays
//! its gradients out the same way; peers compare the layout's length and [`Layout::digest`],
//! a hash of its shapes, before they sum.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

/// Where each parameter's gradient sits in the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    entries: Vec<(ParamId, Vec<usize>, usize)>,
    len: usize,
}

impl Layout {
    /// Values in the flat buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A digest of the shapes in order (FNV-1a), equal on every peer that may sum with
    /// this one.
    pub fn digest(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for (_, shape, _) in &self.entries {
            for &d in shape.iter().chain(std::iter::once(&usize::MAX)) {
                for byte in (d as u64).to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        hash
    }
}

/// Collects the parameters that have gradients, in visiting order.
struct Collect<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    layout: Layout,
    values: Option<Vec<f32>>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else { return };
        let shape = grad.dims().to_vec();
        let count: usize = shape.iter().product();
        self.layout.entries.push((param.id, shape, self.layout.len));
        self.layout.len += count;
        if let Some(values) = &mut self.values {
            let data = grad.into_data().convert::<f32>();
            values.extend(data.as_slice::<f32>().unwrap_or(&[]));
        }
    }
}

/// The layout of `grads` for `model`, and its values flattened.
pub fn flatten<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> (Layout, Vec<f32>) {
    let mut collect = Collect::<B> {
        grads,
        layout: Layout { entries: Vec::new(), len: 0 },
        values: Some(Vec::new()),
        _backend: std::marker::PhantomData,
    };
    model.visit(&mut collect);
    let values = collect.values.take().unwrap_or_default();
    (collect.layout, values)
}

/// Gradients of `layout` holding `values` (as [`flatten`] laid them out) on `device`.
pub fn unflatten<B: Backend>(layout: &Layout, values: &[f32], device: &B::Device) -> anyhow::Result<GradientsParams> {
    anyhow::ensure!(values.len() == layout.len, "{} gradient values for a layout of {}", values.len(), layout.len);
    let mut grads = GradientsParams::new();
    for (id, shape, offset) in &layout.entries {
        let count: usize = shape.iter().product();
        let data = TensorData::new(values[*offset..*offset + count].to_vec(), shape.clone());
        match shape.len() {
            1 => grads.register::<B, 1>(*id, Tensor::from_data(data, device)),
            2 => grads.register::<B, 2>(*id, Tensor::from_data(data, device)),
            3 => grads.register::<B, 3>(*id, Tensor::from_data(data, device)),
            4 => grads.register::<B, 4>(*id, Tensor::from_data(data, device)),
            // Parameters of the networks here have 1 to 4 dimensions.
            rank => anyhow::bail!("a parameter of {rank} dimensions: only 1 to 4 are summed"),
        }
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};

    use super::*;
    use crate::model::Net;

    type B = Autodiff<Flex>;

    #[test]
    fn gradients_survive_the_round_trip_in_one_layout_per_network() {
        let spec = crate::model::generate::StudentSpec::sweep(3, 20_000, [8, 8, 1], 3);
        let (config, _) = crate::model::generate::student(&spec).unwrap();
        let device = Default::default();
        let net = Net::<B>::new(&config, &device).unwrap();
        let images = Tensor::<B, 4>::ones([2, 1, 8, 8], &device);
        let loss = net.forward(images).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let (layout, values) = flatten::<B, _>(&net, &grads);
        // Every parameter has a gradient: the layout holds them all.
        assert_eq!(layout.len() as u64, crate::model::count::totals(&config).unwrap().0);
        assert_eq!(values.len(), layout.len());
        let back = unflatten::<Flex>(&layout, &values, &device).unwrap();
        assert!(unflatten::<Flex>(&layout, &values[1..], &device).is_err());
        let (again, values_again) = flatten::<B, _>(&net, &back);
        assert_eq!((again, values_again), (layout.clone(), values));
        // A copy of the network lays its gradients out the same way.
        let copy = net.clone();
        assert_eq!(flatten::<B, _>(&copy, &grads).0.digest(), layout.digest());
    }
}
