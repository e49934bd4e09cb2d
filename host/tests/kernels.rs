//! The fused conv + maxout kernel, alone and with the batch norm + maxout kernel, against
//! burn's own ops: same outputs, same gradients for the input, the weights, the bias and
//! batch norm's scale and shift, same running statistics, over many layer shapes.

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Param, RunningState};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};
use fitnets::backend::Flex;
use fitnets::kernels::{self, ConvGeometry, conv, unrolled};
use fitnets::model::net::ConvLayer;

type B = Autodiff<Flex>;

/// A small deterministic generator (SplitMix64), values in `[-1, 1)`.
struct Values(u64);

impl Values {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn tensor<const D: usize>(&mut self, shape: [usize; D]) -> Tensor<B, D> {
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| self.next()).collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }
}

/// `max |a - b| / max |a|`.
fn relative<const D: usize>(a: Tensor<Flex, D>, b: Tensor<Flex, D>) -> f32 {
    let scale = a.clone().abs().max().into_scalar();
    (a - b).abs().max().into_scalar() / scale.max(f32::MIN_POSITIVE)
}

#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    input: [usize; 3],
    units: usize,
    pieces: usize,
    kernel: usize,
    stride: usize,
    padding: [usize; 4],
    relu: bool,
}

/// Forward and backward through the fused path and through burn's ops; every output
/// and gradient must agree to float rounding.
fn check(case: Case, seed: u64) {
    check_layer(case, seed, false);
}

/// [`check`], with batch norm between the conv and maxout when `norm`: then its scale and
/// shift gradients and its running statistics must agree too, and so must the output
/// in inference mode (running statistics, no autodiff).
fn check_layer(case: Case, seed: u64, norm: bool) {
    let Case { batch, input: [c, h, w], units, pieces, kernel, stride, padding: [t, l, b, r], relu } = case;
    let device = Default::default();
    // A fresh layer with the same values each time: training moves batch norm's running
    // statistics.
    let layer = || {
        let mut values = Values(seed);
        let mut conv = Conv2dConfig::new([c, units * pieces], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
            .init::<B>(&device);
        let dims = conv.weight.dims();
        conv.weight = conv.weight.map(|_| values.tensor(dims).require_grad());
        let bias = values.tensor([units * pieces]);
        conv.bias = conv.bias.map(|p| p.map(|_| bias.require_grad()));
        let norm = norm.then(|| {
            let mut norm = BatchNormConfig::new(units * pieces).init::<B>(&device);
            let channels = [units * pieces];
            norm.gamma = Param::from_tensor((values.tensor(channels) + 1.5).require_grad());
            norm.beta = Param::from_tensor(values.tensor(channels).require_grad());
            norm.running_mean = RunningState::new(values.tensor(channels));
            norm.running_var = RunningState::new(values.tensor(channels) + 1.5);
            norm
        });
        ConvLayer { conv, norm, pieces, relu }
    };
    assert!(kernels::geometry(&layer().conv, [batch, c, h, w], pieces).is_some(), "{case:?}");
    let x = Values(seed ^ 0x5EED).tensor([batch, c, h, w]);

    let run = |fused: bool| {
        let layer = layer();
        let x = x.clone().require_grad();
        let y = if fused { layer.forward(x.clone()) } else { layer.forward_with_burn(x.clone()) };
        // A random weighting, so that every output gets its own gradient.
        let weights = Values(seed ^ 0xABCD).tensor(y.dims());
        let grads = (y.clone() * weights).sum().backward();
        let mut out = vec![
            ("output", y.inner().reshape([-1])),
            ("input gradient", x.grad(&grads).expect("x takes part").reshape([-1])),
            ("weight gradient", layer.conv.weight.grad(&grads).expect("the weights take part").reshape([-1])),
            ("bias gradient", layer.conv.bias.as_ref().unwrap().grad(&grads).expect("the bias takes part")),
        ];
        if let Some(norm) = &layer.norm {
            out.push(("scale gradient", norm.gamma.grad(&grads).expect("the scale takes part")));
            out.push(("shift gradient", norm.beta.grad(&grads).expect("the shift takes part")));
            // `value_sync`: burn's running state shows an update only once synced.
            out.push(("running mean", norm.running_mean.value_sync().inner()));
            out.push(("running variance", norm.running_var.value_sync().inner()));
            let inference = layer.valid();
            let x = x.clone().inner();
            let y = if fused { inference.forward(x) } else { inference.forward_with_burn(x) };
            out.push(("inference output", y.reshape([-1])));
        }
        out
    };
    let burn = run(false);
    let fused = run(true);
    let largest = |t: &Tensor<Flex, 1>| t.clone().abs().max().into_scalar();
    // Values per channel: the sums batch norm's statistics and a conv's bias and weight
    // gradients run over.
    let out = |size: usize, before: usize, after: usize| (size + before + after - kernel) / stride + 1;
    let per_channel = (batch * out(h, t, b) * out(w, l, r)) as f32;
    let input_gradient_scale = largest(&fused[1].1);
    for ((what, a), (_, b)) in burn.into_iter().zip(fused) {
        assert_eq!(a.dims(), b.dims(), "{what} for {case:?}");
        // Batch norm subtracts each channel's mean, the conv's bias with it: the bias
        // gradient is zero, and both paths give rounding noise of sums over
        // `per_channel` values.
        if norm && what == "bias gradient" {
            let bound = 1e-4 * per_channel * input_gradient_scale;
            assert!(largest(&b) <= bound, "{what} {} is not zero for {case:?}", largest(&b));
            continue;
        }
        // burn sums batch norm's statistics in f32, the kernel in f64; a channel of
        // nearly equal values (mostly padding) has a small variance that amplifies the
        // difference in what is normalized. The statistics themselves are plain means.
        let tolerance = match what {
            _ if !norm => 1e-5,
            "running mean" | "running variance" => 1e-5,
            _ => 1e-3,
        };
        let diff = relative(a, b);
        assert!(diff < tolerance, "{what} differs by {diff:e} for {case:?} (batch norm: {norm})");
    }
}

#[test]
fn fused_conv_maxout_matches_burn_on_the_papers_layers() {
    let paper = [
        // MNIST teacher: 8x8 maxout convs, a 5x5 one with padding larger than the input.
        Case { batch: 3, input: [1, 28, 28], units: 48, pieces: 2, kernel: 8, stride: 1, padding: [0; 4], relu: false },
        Case {
            batch: 2,
            input: [48, 10, 10],
            units: 48,
            pieces: 2,
            kernel: 8,
            stride: 1,
            padding: [3; 4],
            relu: false,
        },
        Case { batch: 2, input: [48, 3, 3], units: 24, pieces: 2, kernel: 5, stride: 1, padding: [3; 4], relu: false },
        // MNIST FitNet: 3x3 same-size maxout convs.
        Case { batch: 4, input: [1, 28, 28], units: 16, pieces: 2, kernel: 3, stride: 1, padding: [1; 4], relu: false },
        Case {
            batch: 2,
            input: [16, 14, 14],
            units: 16,
            pieces: 2,
            kernel: 3,
            stride: 1,
            padding: [1; 4],
            relu: false,
        },
        Case { batch: 2, input: [16, 7, 7], units: 12, pieces: 2, kernel: 3, stride: 1, padding: [1; 4], relu: false },
        // Several images per matrix product, with a short last product in each thread.
        Case { batch: 17, input: [3, 9, 9], units: 5, pieces: 2, kernel: 3, stride: 1, padding: [1; 4], relu: false },
    ];
    for (i, case) in paper.into_iter().enumerate() {
        check(case, i as u64);
        check_layer(case, i as u64, true);
    }
}

#[test]
fn fused_conv_maxout_matches_burn_on_odd_shapes() {
    let mut draw = Values(7);
    let mut pick = |range: std::ops::RangeInclusive<usize>| {
        let span = (range.end() - range.start() + 1) as f32;
        range.start() + (((draw.next() + 1.0) / 2.0 * span) as usize).min(range.end() - range.start())
    };
    let (mut checked, mut normalized) = (0, 0);
    for seed in 0..60 {
        let kernel = pick(1..=5);
        let stride = pick(1..=3);
        let padding = [pick(0..=3), pick(0..=3), pick(0..=3), pick(0..=3)];
        let input = [pick(1..=5), pick(1..=9), pick(1..=9)];
        let case = Case {
            batch: pick(1..=5),
            input,
            units: pick(1..=4),
            pieces: pick(1..=4),
            kernel,
            stride,
            padding,
            relu: pick(0..=1) == 1,
        };
        // Shapes where no window fits are refused by burn too; skip them.
        let fits = input[1] + padding[0] + padding[2] >= kernel && input[2] + padding[1] + padding[3] >= kernel;
        if fits {
            check(case, 100 + seed);
            checked += 1;
            // With batch norm, a channel whose every window holds only padding is
            // constant: normalized, it is zero in exact arithmetic and rounding noise in
            // burn's f32. That happens when no output row, or no output column, has a
            // window that reaches the image.
            let reaches = |size: usize, before: usize, after: usize| {
                let outputs = (size + before + after - kernel) / stride + 1;
                (0..outputs).any(|o| o * stride + kernel > before && o * stride < before + size)
            };
            if reaches(input[1], padding[0], padding[2]) && reaches(input[2], padding[1], padding[3]) {
                check_layer(case, 100 + seed, true);
                normalized += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} shapes fit");
    assert!(normalized >= 30, "only {normalized} shapes checked with batch norm");
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    // <im2col(x), c> == <x, col2im(c)> for every geometry: the backward pass's input
    // gradient rests on it.
    let mut values = Values(3);
    for (input, kernel, stride, padding) in [
        ([2, 7, 5], [3, 3], [1, 1], [1, 1, 1, 1]),
        ([1, 6, 6], [4, 2], [2, 3], [0, 2, 3, 1]),
        ([3, 4, 9], [5, 5], [1, 2], [3, 3, 3, 3]),
    ] {
        let g = ConvGeometry::new(input, 2, 1, kernel, stride, padding).expect("a window fits");
        let x: Vec<f32> = (0..g.input_len()).map(|_| values.next()).collect();
        let c: Vec<f32> = (0..g.window() * g.positions()).map(|_| values.next()).collect();
        let mut cols = vec![f32::NAN; c.len()];
        conv::im2col(&g, &x, &mut cols, g.positions());
        let mut dx = vec![f32::NAN; x.len()];
        conv::col2im(&g, &c, g.positions(), &mut dx);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| f64::from(a * b)).sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} != {rhs} for {g:?}");
    }
}

#[test]
fn the_dense_matrix_and_im2col_compute_the_same_layer() {
    // Both methods on shapes each would be chosen for, including strides, uneven padding
    // and an input larger than a window: outputs, winners and all three gradients.
    let mut values = Values(11);
    for (input, outputs, pieces, kernel, stride, padding) in [
        ([48, 3, 3], 48, 2, [5, 5], [1, 1], [3, 3, 3, 3]),
        ([4, 9, 9], 6, 2, [8, 8], [1, 1], [3, 3, 3, 3]),
        ([3, 6, 5], 4, 1, [3, 2], [2, 1], [0, 2, 1, 0]),
        ([2, 7, 7], 6, 3, [3, 3], [1, 1], [1, 1, 1, 1]),
    ] {
        let g = ConvGeometry::new(input, outputs, pieces, kernel, stride, padding).expect("a window fits");
        let images = 3;
        let mut draw = |n: usize| (0..n).map(|_| values.next()).collect::<Vec<f32>>();
        let x = draw(images * g.input_len());
        let weight = draw(outputs * g.window());
        let bias = draw(outputs);
        let dy = draw(images * g.output_len());
        let (y_cols, won_cols) = conv::columns_forward(&g, &x, &weight, &bias);
        let (y_dense, won_dense) = unrolled::forward(&g, &x, &weight, &bias);
        let close = |a: &[f32], b: &[f32], what: &str| {
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let diff = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(a.len() == b.len() && diff <= 1e-5 * scale, "{what} differs by {diff:e} for {g:?}");
        };
        close(&y_cols, &y_dense, "output");
        // Winners may differ only where two pieces tie to float rounding; none do here.
        assert_eq!(won_cols, won_dense, "winners for {g:?}");
        let (dx_cols, dw_cols, db_cols) = conv::columns_backward(&g, &x, &weight, &dy, &won_cols, true);
        let (dx_dense, dw_dense, db_dense) = unrolled::backward(&g, &x, &weight, &dy, &won_cols, true);
        close(&dx_cols.unwrap(), &dx_dense.unwrap(), "input gradient");
        close(&dw_cols, &dw_dense, "weight gradient");
        close(&db_cols, &db_dense, "bias gradient");
        assert!(unrolled::backward(&g, &x, &weight, &dy, &won_cols, false).0.is_none());
    }
    // The teacher's second and third convs go dense; its first (28x28 maps) and the
    // FitNet's 3x3 convs stay on im2col.
    let geometry = |input, outputs, kernel, padding| {
        ConvGeometry::new(input, outputs, 2, [kernel; 2], [1, 1], [padding; 4]).unwrap()
    };
    assert!(unrolled::worth_it(&geometry([48, 3, 3], 48, 5, 3)));
    assert!(unrolled::worth_it(&geometry([48, 9, 9], 96, 8, 3)));
    assert!(!unrolled::worth_it(&geometry([1, 28, 28], 96, 8, 0)));
    assert!(!unrolled::worth_it(&geometry([16, 7, 7], 24, 3, 1)));
}

#[test]
fn geometry_refuses_what_the_kernel_does_not_do() {
    let device = Default::default();
    let conv = |config: Conv2dConfig| config.init::<B>(&device);
    let base = || Conv2dConfig::new([2, 4], [3, 3]);
    assert!(kernels::geometry(&conv(base()), [1, 2, 5, 5], 2).is_some());
    assert!(kernels::geometry(&conv(base().with_bias(false)), [1, 2, 5, 5], 2).is_none());
    assert!(kernels::geometry(&conv(base().with_dilation([2, 2])), [1, 2, 5, 5], 2).is_none());
    assert!(kernels::geometry(&conv(base().with_padding(PaddingConfig2d::Same)), [1, 2, 5, 5], 2).is_none());
    assert!(kernels::geometry(&conv(base()), [1, 2, 5, 5], 3).is_none(), "3 pieces do not divide 4 channels");
    assert!(kernels::geometry(&conv(base()), [1, 2, 2, 2], 2).is_none(), "no 3x3 window fits a 2x2 input");
}

#[test]
fn max_pool_matches_burn() {
    use burn::nn::pool::MaxPool2dConfig;
    let mut draw = Values(11);
    let mut pick = |range: std::ops::RangeInclusive<usize>| {
        let span = (range.end() - range.start() + 1) as f32;
        range.start() + (((draw.next() + 1.0) / 2.0 * span) as usize).min(range.end() - range.start())
    };
    // The paper's pools first (teacher 4x4/2 with padding and ceil mode, FitNet 2x2/2),
    // then random ones.
    let mut cases =
        vec![([3, 48, 21, 21], 4, 2, 1, true), ([4, 16, 28, 28], 2, 2, 0, false), ([2, 48, 9, 9], 2, 2, 0, true)];
    for _ in 0..60 {
        let kernel = pick(1..=4);
        cases.push((
            [pick(1..=3), pick(1..=4), pick(1..=9), pick(1..=9)],
            kernel,
            pick(1..=3),
            pick(0..=kernel / 2),
            pick(0..=1) == 1,
        ));
    }
    let mut checked = 0;
    for (seed, (shape, kernel, stride, padding, ceil)) in cases.into_iter().enumerate() {
        let pool = MaxPool2dConfig::new([kernel, kernel])
            .with_strides([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
            .with_ceil_mode(ceil)
            .init();
        if kernels::pool_geometry(&pool, shape).is_none() {
            continue;
        }
        let x = Values(seed as u64).tensor(shape);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y = if fused {
                kernels::max_pool(&pool, x.clone()).expect("flex has the kernel")
            } else {
                pool.forward(x.clone())
            };
            let weights = Values(seed as u64 ^ 0x55).tensor(y.dims());
            let grads = (y.clone() * weights).sum().backward();
            (y.inner(), x.grad(&grads).expect("x takes part"))
        };
        let (y0, dx0) = run(false);
        let (y1, dx1) = run(true);
        let what = (shape, kernel, stride, padding, ceil);
        assert_eq!(y0.dims(), y1.dims(), "{what:?}");
        assert_eq!(relative(y0, y1), 0.0, "output of {what:?}");
        assert_eq!(relative(dx0, dx1), 0.0, "input gradient of {what:?}");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} pools fit");
}
