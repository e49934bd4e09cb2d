//! Times one training step (forward and backward) of each maxout conv and pooling layer
//! of the MNIST teacher and FitNet, through burn's ops and through fitnets' fused
//! kernels (`fitnets::kernels`, flex only: on ndarray both columns run burn's ops):
//! `cargo run --release -p fitnets --example layer_bench -- [flex|ndarray] [batch]`.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Tensor};
use fitnets::backend::{Flex, NdArray};
use fitnets::model::net::ConvLayer;

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

/// How far the fused kernel is from burn's ops in output and input gradient.
fn agreement<B: AutodiffBackend>(layer: &ConvLayer<B>, x: &Tensor<B, 4>) -> (f32, f32) {
    let grad = |f: &dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>| {
        let x = x.clone().require_grad();
        let y = f(x.clone());
        let grads = y.clone().sum().backward();
        (y.inner(), x.grad(&grads).expect("x takes part"))
    };
    let (y0, dx0) = grad(&|x| layer.forward_with_burn(x));
    let (y1, dx1) = grad(&|x| layer.forward(x));
    (relative_diff(y0, y1), relative_diff(dx0, dx1))
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
        let layer = ConvLayer { conv: conv::<B>(c, o, k, p, &device), norm: None, pieces: 2, relu: false };
        let x = random::<B>([batch, c, h, w], &device);
        let burn = time(|| train_step(&x, &|x| layer.forward_with_burn(x)));
        let fused = time(|| train_step(&x, &|x| layer.forward(x)));
        let fwd = time(|| forward(&x, &|x| layer.forward(x)));
        let (dy, dx) = agreement(&layer, &x);
        println!(
            "  {label:<14} conv+maxout fwd+bwd: burn {burn:8.2}  fused {fused:8.2} ({:.1}x)  fused fwd {fwd:8.2}   \
             (differ: output {dy:.1e}, input gradient {dx:.1e})",
            burn / fused
        );
    }
    let maps = [("teacher", [48, 21, 21], 4, 2), ("student", [16, 28, 28], 2, 2)];
    for (label, [c, h, w], kernel, stride) in maps {
        let pool = MaxPool2dConfig::new([kernel, kernel]).with_strides([stride, stride]).init();
        let x = random::<B>([batch, c, h, w], &device);
        let burn = time(|| train_step(&x, &|x| pool.forward(x)));
        let fused =
            time(|| train_step(&x, &|x| fitnets::kernels::max_pool(&pool, x).unwrap_or_else(|x| pool.forward(x))));
        println!(
            "  {label:<14} max pool {kernel}x{kernel}/{stride} fwd+bwd: burn {burn:8.2}  ours {fused:8.2} ({:.1}x)",
            burn / fused
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
