//! Times one training step (forward and backward) of each conv, maxout and pooling
//! layer of the MNIST teacher and FitNet on a CPU backend: `cargo run --release -p
//! fitnets --example layer_bench -- [flex|ndarray] [batch]`.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::PadMode;
use burn::tensor::{Distribution, ElementConversion, Tensor};
use fitnets::backend::{Flex, NdArray};
use fitnets::model::net::maxout_map;

/// `conv` applied to `x` as one matrix product: the windows of the padded input,
/// unfolded into `[N*H'*W', C*kh*kw]` (im2col), times the weights `[C*kh*kw, O]`. Both
/// passes of training then run as plain matrix products (slower on flex: see
/// `docs/benchmarks.md`). A conv with groups, dilation or `Same` padding takes
/// `conv.forward`; `run` prints how far the two agree.
fn conv2d_im2col<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let (pt, pl, pb, pr) = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        _ => return conv.forward(x),
    };
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return conv.forward(x);
    }
    let [n, c, _, _] = x.dims();
    let [o, _, kh, kw] = conv.weight.dims();
    let [sh, sw] = conv.stride;
    let x = if pt + pl + pb + pr > 0 { x.pad((pl, pr, pt, pb), PadMode::Constant(0.0)) } else { x };
    // [N, C, H', W, kh], then [N, C, H', W', kh, kw]: strided views of the input.
    let windows: Tensor<B, 5> = x.unfold(2, kh, sh);
    let windows: Tensor<B, 6> = windows.unfold(3, kw, sw);
    let [_, _, ho, wo, _, _] = windows.dims();
    let columns = windows.permute([0, 2, 3, 1, 4, 5]).reshape([n * ho * wo, c * kh * kw]);
    let mut y = columns.matmul(conv.weight.val().reshape([o, c * kh * kw]).transpose());
    if let Some(bias) = &conv.bias {
        y = y + bias.val().unsqueeze_dim(0);
    }
    y.reshape([n, ho, wo, o]).permute([0, 3, 1, 2])
}

/// Milliseconds per call of `step`, after one warm-up call.
fn time<F: FnMut()>(mut step: F) -> f64 {
    step();
    let reps = 5;
    let start = Instant::now();
    for _ in 0..reps {
        step();
    }
    start.elapsed().as_secs_f64() * 1e3 / reps as f64
}

/// `max |a - b| / max |a|`.
fn relative_diff<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    let scale: f32 = a.clone().abs().max().into_scalar().elem();
    let diff: f32 = (a - b).abs().max().into_scalar().elem();
    diff / scale
}

/// How far `conv2d_im2col` is from `conv.forward` in output and input gradient.
fn agreement<B: AutodiffBackend>(layer: &Conv2d<B>, x: &Tensor<B, 4>) -> (f32, f32) {
    let grad = |f: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>| {
        let x = x.clone().require_grad();
        let y = f(x.clone());
        let grads = y.clone().sum().backward();
        (y.inner(), x.grad(&grads).expect("x takes part"))
    };
    let (y0, dx0) = grad(&|x| layer.forward(x));
    let (y1, dx1) = grad(&|x| conv2d_im2col(layer, x));
    (relative_diff(y0, y1), relative_diff(dx0, dx1))
}

/// Maxout over channel groups as an elementwise maximum of the pieces' slices.
fn maxout_pairwise<B: AutodiffBackend>(x: Tensor<B, 4>, pieces: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let x = x.reshape([n, c / pieces, pieces, h * w]);
    let mut y = x.clone().narrow(2, 0, 1);
    for p in 1..pieces {
        y = y.max_pair(x.clone().narrow(2, p, 1));
    }
    y.reshape([n, c / pieces, h, w])
}

fn random<B: AutodiffBackend>(shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Forward only of `f` on `x`.
fn forward<B: AutodiffBackend>(x: &Tensor<B, 4>, f: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>) {
    let _ = f(x.clone()).into_data();
}

/// Forward and backward of `f` on `x`.
fn train_step<B: AutodiffBackend>(x: &Tensor<B, 4>, f: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>) {
    let y = f(x.clone().require_grad());
    let _ = y.sum().backward();
}

fn conv<B: AutodiffBackend>(c: usize, o: usize, k: usize, p: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([c, o], [k, k]).with_padding(PaddingConfig2d::Explicit(p, p, p, p)).init(device)
}

fn run<B: AutodiffBackend>(name: &str, batch: usize) {
    let device = B::Device::default();
    println!("{name}, batch {batch}: ms per call (fwd = forward only, no autodiff graph kept)");
    // (label, input [C, H, W], units*pieces, kernel, padding)
    let convs = [
        ("teacher conv1", [1, 28, 28], 96, 8, 0),
        ("teacher conv2", [48, 10, 10], 96, 8, 3),
        ("teacher conv3", [48, 3, 3], 48, 5, 3),
        ("student conv1", [1, 28, 28], 32, 3, 1),
        ("student conv2", [16, 28, 28], 32, 3, 1),
        ("student conv3", [16, 14, 14], 32, 3, 1),
        ("student conv5", [16, 7, 7], 24, 3, 1),
    ];
    for (label, [c, h, w], o, k, p) in convs {
        let layer = conv::<B>(c, o, k, p, &device);
        let x = random::<B>([batch, c, h, w], &device);
        let fwd = time(|| forward(&x, &|x| layer.forward(x)));
        let native = time(|| train_step(&x, &|x| layer.forward(x)));
        let im2col = time(|| train_step(&x, &|x| conv2d_im2col(&layer, x)));
        let (dy, dx) = agreement(&layer, &x);
        println!("  {label:<14} im2col vs native: output {dy:.1e}, input gradient {dx:.1e} (relative)");
        println!("  {label:<14} native conv fwd {fwd:8.2} fwd+bwd {native:8.2}   im2col+matmul {im2col:8.2}");
    }
    let maps = [("teacher", [96, 21, 21], 4, 2), ("student", [32, 28, 28], 2, 2)];
    for (label, [c, h, w], kernel, stride) in maps {
        let x = random::<B>([batch, c, h, w], &device);
        let maxout = time(|| train_step(&x, &|x| maxout_map(x, 2)));
        let pairwise = time(|| train_step(&x, &|x| maxout_pairwise(x, 2)));
        let pool = MaxPool2dConfig::new([kernel, kernel]).with_strides([stride, stride]).init();
        let half = random::<B>([batch, c / 2, h, w], &device);
        let pooled = time(|| train_step(&half, &|x| pool.forward(x)));
        println!(
            "  {label:<14} maxout max_dim {maxout:8.2} max_pair {pairwise:8.2}   max pool {kernel}x{kernel}/{stride} {pooled:8.2}"
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "flex".into());
    let batch = args.next().and_then(|b| b.parse().ok()).unwrap_or(128);
    match backend.as_str() {
        "ndarray" => run::<Autodiff<NdArray>>("ndarray", batch),
        _ => run::<Autodiff<Flex>>("flex", batch),
    }
}
