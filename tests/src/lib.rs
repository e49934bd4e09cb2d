//! Model fixtures shared by fitnets' end-to-end tests, fuzz seeds and firmware.
//!
//! Deterministic: weights come from a seeded generator, so the same call gives the same
//! blob on every machine (the golden-bytes test relies on it).

use fitnets_shared::format::encode::{AffineSpec, InputSpec, LayerSpec, ModelSpec, pixel_table};
use fitnets_shared::format::{Activation, Quant};
use fitnets_shared::ops::Window;
use fitnets_shared::quant::quantize_multiplier;
use fitnets_shared::tensor::Shape;

/// A small deterministic generator (SplitMix64): fixtures need repeatable values, not
/// statistical quality.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        (i64::from(lo) + (self.next_u64() % span) as i64) as i32
    }
}

/// A layer of a fixture architecture, before weights are drawn.
#[derive(Clone, Copy, Debug)]
pub enum Arch {
    /// A conv with this window and output channel count, no activation.
    Conv {
        window: Window,
        outputs: u16,
    },
    /// A conv with a fused ReLU.
    ConvRelu {
        window: Window,
        outputs: u16,
    },
    Maxout(u16),
    MaxPool(Window),
    AvgPool(Window),
    GlobalAvgPool,
    Flatten,
    Dense(u16),
}

/// Builds a model of `arch` on an input of `input` shape with drawn weights and
/// quantization parameters that keep every accumulator in range. `classes` labels are
/// named `class0`, `class1`, …; the last layer must produce `1 x 1 x classes`.
pub fn model(name: &str, input: Shape, arch: &[Arch], classes: u16, seed: u64) -> ModelSpec {
    let mut rng = SplitMix(seed);
    let in_quant = Quant { scale: 1.0 / 255.0, zero_point: -128 };
    let mut shape = input;
    let mut quant = in_quant;
    let mut layers = Vec::new();
    for &layer in arch {
        let spec = match layer {
            Arch::Conv { window, outputs } | Arch::ConvRelu { window, outputs } => {
                let fan_in = usize::from(window.kernel_h) * usize::from(window.kernel_w) * usize::from(shape.channels);
                let relu = matches!(layer, Arch::ConvRelu { .. });
                let (affine, out_quant) = affine(&mut rng, fan_in, outputs, quant, relu);
                let (h, w) = window.output_size(shape.height, shape.width).expect("fixture window fits");
                shape = Shape::new(h, w, outputs);
                quant = out_quant;
                LayerSpec::Conv2d { window, affine }
            }
            Arch::Dense(outputs) => {
                let (affine, out_quant) = affine(&mut rng, usize::from(shape.channels), outputs, quant, false);
                shape = Shape::vector(outputs);
                quant = out_quant;
                LayerSpec::FullyConnected { affine }
            }
            Arch::Maxout(pieces) => {
                shape = Shape::new(shape.height, shape.width, shape.channels / pieces);
                LayerSpec::Maxout { pieces }
            }
            Arch::MaxPool(window) | Arch::AvgPool(window) => {
                let (h, w) = window.output_size(shape.height, shape.width).expect("fixture window fits");
                shape = Shape::new(h, w, shape.channels);
                if matches!(layer, Arch::MaxPool(_)) {
                    LayerSpec::MaxPool2d { window }
                } else {
                    LayerSpec::AvgPool2d { window }
                }
            }
            Arch::GlobalAvgPool => {
                let output = Quant { scale: quant.scale * 0.75, zero_point: rng.range(-20, 20) as i8 };
                let (multiplier, shift) = quantize_multiplier(f64::from(quant.scale) / f64::from(output.scale));
                shape = Shape::vector(shape.channels);
                quant = output;
                LayerSpec::GlobalAvgPool { multiplier, shift, output }
            }
            Arch::Flatten => {
                shape = Shape::vector(shape.height * shape.width * shape.channels);
                LayerSpec::Flatten
            }
        };
        layers.push(spec);
    }
    ModelSpec {
        name: name.to_string(),
        input: InputSpec {
            shape: input,
            quant: in_quant,
            pixel_table: pixel_table(
                &vec![0.0; usize::from(input.channels)],
                &vec![1.0; usize::from(input.channels)],
                in_quant,
            ),
        },
        labels: (0..classes).map(|c| format!("class{c}")).collect(),
        layers,
    }
}

/// Draws weights in `[-127, 127]`, biases of a realistic size, and an output scale
/// that maps the accumulator's typical range onto int8.
fn affine(rng: &mut SplitMix, fan_in: usize, outputs: u16, input: Quant, relu: bool) -> (AffineSpec, Quant) {
    let outputs = usize::from(outputs);
    let weights: Vec<i8> = (0..fan_in * outputs).map(|_| rng.range(-127, 127) as i8).collect();
    let bias: Vec<i32> = (0..outputs).map(|_| rng.range(-2000, 2000)).collect();
    // Typical |acc| ~ 64 * 73 * sqrt(fan_in); aim that at ~ 3 standard deviations.
    let w_scales: Vec<f64> = (0..outputs).map(|_| 0.002 + 0.0001 * f64::from(rng.range(0, 20))).collect();
    let spread = 64.0 * 73.0 * (fan_in as f64).sqrt() * 0.5;
    let out_scale = (f64::from(input.scale) * w_scales[0] * spread / 127.0) as f32;
    let output = Quant { scale: out_scale, zero_point: rng.range(-10, 10) as i8 };
    let (multipliers, shifts) =
        w_scales.iter().map(|w| quantize_multiplier(f64::from(input.scale) * w / f64::from(out_scale))).unzip();
    let activation = if relu { Activation::Relu } else { Activation::None };
    (AffineSpec { activation, weights, bias, multipliers, shifts, output }, output)
}

/// 3x3 window with SAME padding and stride 1.
pub fn same3(shape_hw: (u16, u16)) -> Window {
    Window::same(shape_hw.0, shape_hw.1, 3, 3, 1, 1)
}

/// The paper's MNIST FitNet shapes: six 3x3 maxout conv layers of 16-16-16-16-12-12
/// units with 2 pieces each, 2x2 max pooling after the 2nd and 4th, fully connected to
/// 10 classes, on a 28x28x1 input.
pub fn paper_fitnet(seed: u64) -> ModelSpec {
    let conv = |outputs| Arch::Conv { window: Window::same(28, 28, 3, 3, 1, 1), outputs };
    let pool = Arch::MaxPool(Window::valid(2, 2, 2, 2));
    let arch = [
        conv(32),
        Arch::Maxout(2),
        conv(32),
        Arch::Maxout(2),
        pool,
        conv(32),
        Arch::Maxout(2),
        conv(32),
        Arch::Maxout(2),
        pool,
        conv(24),
        Arch::Maxout(2),
        conv(24),
        Arch::Maxout(2),
        Arch::Flatten,
        Arch::Dense(10),
    ];
    model("paper-fitnet", Shape::new(28, 28, 1), &arch, 10, seed)
}

/// A tiny model exercising every operator: small enough for a golden-bytes test and
/// for the firmware's default blob.
pub fn tiny(seed: u64) -> ModelSpec {
    let arch = [
        Arch::Conv { window: same3((8, 8)), outputs: 8 },
        Arch::Maxout(2),
        Arch::MaxPool(Window::valid(2, 2, 2, 2)),
        Arch::ConvRelu { window: Window::valid(3, 3, 1, 1), outputs: 6 },
        Arch::AvgPool(Window::same(2, 2, 2, 2, 1, 1)),
        Arch::Flatten,
        Arch::Dense(6),
        Arch::Maxout(2),
    ];
    model("tiny", Shape::new(8, 8, 1), &arch, 3, seed)
}
