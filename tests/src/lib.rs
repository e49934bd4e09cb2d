//! Model fixtures shared by fitnets' end-to-end tests, fuzz seeds and firmware.
//!
//! Deterministic: weights come from a seeded generator, so the same call gives the same
//! blob on every machine (the golden-bytes test relies on it).

use fitnets_shared::format::encode::{AffineSpec, InputSpec, LayerSpec, ModelSpec, pixel_table};
use fitnets_shared::format::{Activation, Quant};
use fitnets_shared::ops::Window;
use fitnets_shared::ops::reference as k;
use fitnets_shared::quant::quantize_multiplier;
use fitnets_shared::tensor::Shape;

/// A small deterministic generator (SplitMix64), the one every test and check of the
/// workspace draws from: fixtures and storms need repeatable values, the same on every
/// host so a failure replays from its seed, not statistical quality.
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

    /// Uniform in `[-1, 1)`, in steps of 2^-19.
    pub fn unit(&mut self) -> f32 {
        (self.below(1 << 20) as f32 / (1 << 19) as f32) - 1.0
    }

    /// Uniform in `0..n` (`n > 0`), up to a negligible bias.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// `len` bytes in `1..=255`.
    pub fn nonzero(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| 1 + self.below(255) as u8).collect()
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

/// Builds a model of `arch` on an input of `input` shape with drawn weights, and
/// calibrates every layer's output scale on a few drawn images, as a quantizer would:
/// the largest accumulator seen maps to about 100, so activations use the int8 range
/// without saturating. `classes` labels are named `class0`, `class1`, …; the last layer
/// must produce `1 x 1 x classes`.
pub fn model(name: &str, input: Shape, arch: &[Arch], classes: u16, seed: u64) -> ModelSpec {
    let mut rng = SplitMix(seed);
    let in_quant = Quant { scale: 1.0 / 255.0, zero_point: -128 };
    let channels = usize::from(input.channels);
    let table = pixel_table(&vec![0.0; channels], &vec![1.0; channels], in_quant);
    // Calibration images: raw pixels through the input table.
    let mut acts: Vec<Vec<i8>> = (0..8)
        .map(|_| (0..input.len()).map(|i| table[(i % channels) * 256 + rng.range(0, 255) as usize]).collect())
        .collect();
    let mut shape = input;
    let mut quant = in_quant;
    let mut layers = Vec::new();
    for &layer in arch {
        let (spec, out_shape, out_quant) = match layer {
            Arch::Conv { window, outputs } | Arch::ConvRelu { window, outputs } => {
                let relu = matches!(layer, Arch::ConvRelu { .. });
                let (h, w) = window.output_size(shape.height, shape.width).expect("fixture window fits");
                let (affine, out_quant) = affine(&mut rng, &acts, shape, window, outputs, quant, relu);
                (LayerSpec::Conv2d { window, affine }, Shape::new(h, w, outputs), out_quant)
            }
            Arch::Dense(outputs) => {
                let window = Window::valid(1, 1, 1, 1);
                let (affine, out_quant) = affine(&mut rng, &acts, shape, window, outputs, quant, false);
                (LayerSpec::FullyConnected { affine }, Shape::vector(outputs), out_quant)
            }
            Arch::Maxout(pieces) => {
                let out = Shape::new(shape.height, shape.width, shape.channels / pieces);
                (LayerSpec::Maxout { pieces }, out, quant)
            }
            Arch::MaxPool(window) | Arch::AvgPool(window) => {
                let (h, w) = window.output_size(shape.height, shape.width).expect("fixture window fits");
                let spec = if matches!(layer, Arch::MaxPool(_)) {
                    LayerSpec::MaxPool2d { window }
                } else {
                    LayerSpec::AvgPool2d { window }
                };
                (spec, Shape::new(h, w, shape.channels), quant)
            }
            Arch::GlobalAvgPool => {
                let output = Quant { scale: quant.scale * 0.75, zero_point: rng.range(-20, 20) as i8 };
                let (multiplier, shift) = quantize_multiplier(f64::from(quant.scale) / f64::from(output.scale));
                (LayerSpec::GlobalAvgPool { multiplier, shift, output }, Shape::vector(shape.channels), output)
            }
            Arch::Flatten => (LayerSpec::Flatten, Shape::vector(shape.height * shape.width * shape.channels), quant),
        };
        acts = acts.iter().map(|x| apply(&spec, x, shape, out_shape, quant)).collect();
        layers.push(spec);
        shape = out_shape;
        quant = out_quant;
    }
    ModelSpec {
        name: name.to_string(),
        input: InputSpec { shape: input, quant: in_quant, pixel_table: table },
        labels: (0..classes).map(|c| format!("class{c}")).collect(),
        layers,
    }
}

/// Runs one layer on one calibration tensor with the reference kernels.
fn apply(spec: &LayerSpec, x: &[i8], input: Shape, output: Shape, quant: Quant) -> Vec<i8> {
    let mut one = ModelSpec {
        name: String::new(),
        input: InputSpec { shape: input, quant, pixel_table: Vec::new() },
        labels: Vec::new(),
        layers: vec![spec.clone()],
    };
    // Encode a one-layer model just to borrow validated parameters from it.
    one.input.pixel_table = vec![0; usize::from(input.channels) * 256];
    one.labels = (0..output.len()).map(|c| c.to_string()).collect();
    let flat = Shape::vector(output.len() as u16);
    let needs_flat = output != flat;
    if needs_flat {
        one.layers.push(LayerSpec::Flatten);
    }
    let blob = fitnets_shared::format::encode::encode(&one).expect("calibration layer is valid");
    let model = fitnets_shared::Model::from_bytes(&blob).unwrap();
    let layer = model.layers().next().unwrap().unwrap();
    let mut y = vec![0i8; output.len()];
    k::layer(&layer, x, &mut y);
    y
}

/// Raw accumulators (bias excluded) of output channel `o` over every output cell.
fn accumulators(x: &[i8], input: Shape, window: Window, weights: &[i8], zero_point: i8, o: usize) -> Vec<i64> {
    let (kh, kw, c) = (usize::from(window.kernel_h), usize::from(window.kernel_w), usize::from(input.channels));
    let (oh, ow) = window.output_size(input.height, input.width).unwrap();
    let mut out = Vec::new();
    for oy in 0..usize::from(oh) {
        for ox in 0..usize::from(ow) {
            let mut acc = 0i64;
            for ky in 0..kh {
                for kx in 0..kw {
                    let y = (oy * usize::from(window.stride_h) + ky) as i64 - i64::from(window.pad_top);
                    let xx = (ox * usize::from(window.stride_w) + kx) as i64 - i64::from(window.pad_left);
                    if y < 0 || xx < 0 || y >= i64::from(input.height) || xx >= i64::from(input.width) {
                        continue;
                    }
                    for i in 0..c {
                        let v = i64::from(x[input.index(y as usize, xx as usize, i)]) - i64::from(zero_point);
                        acc += v * i64::from(weights[((o * kh + ky) * kw + kx) * c + i]);
                    }
                }
            }
            out.push(acc);
        }
    }
    out
}

/// Draws weights in `[-127, 127]`, per-channel weight scales and biases, then picks the
/// output scale from the accumulators seen on the calibration tensors.
fn affine(
    rng: &mut SplitMix,
    acts: &[Vec<i8>],
    input: Shape,
    window: Window,
    outputs: u16,
    in_quant: Quant,
    relu: bool,
) -> (AffineSpec, Quant) {
    let n = usize::from(outputs);
    let fan_in = usize::from(window.kernel_h) * usize::from(window.kernel_w) * usize::from(input.channels);
    let weights: Vec<i8> = (0..fan_in * n).map(|_| rng.range(-127, 127) as i8).collect();
    let w_scales: Vec<f64> = (0..n).map(|_| 0.002 * (1.0 + f64::from(rng.range(0, 100)) / 100.0)).collect();
    let mut bias = Vec::with_capacity(n);
    let mut largest = 1e-12f64;
    for (o, &w_scale) in w_scales.iter().enumerate() {
        let accs: Vec<i64> =
            acts.iter().flat_map(|x| accumulators(x, input, window, &weights, in_quant.zero_point, o)).collect();
        let peak = accs.iter().map(|a| a.unsigned_abs()).max().unwrap_or(0).max(1) as i64;
        // A bias of up to a sixteenth of the peak shifts the channel without dominating it.
        let b = rng.range(-(peak / 16).min(1 << 20) as i32, (peak / 16).min(1 << 20) as i32);
        bias.push(b);
        largest = largest.max((peak + i64::from(b).abs()) as f64 * f64::from(in_quant.scale) * w_scale);
    }
    let out_scale = (largest / 100.0) as f32;
    let output = Quant { scale: out_scale, zero_point: rng.range(-10, 10) as i8 };
    let (multipliers, shifts) =
        w_scales.iter().map(|w| quantize_multiplier(f64::from(in_quant.scale) * w / f64::from(out_scale))).unzip();
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

/// A random architecture whose windows fit, with its input shape and classes: a few
/// conv/maxout/pool blocks, then either global average pooling or flatten and a dense
/// layer (optionally with maxout). Inputs are at most 12x12x3 and layers at most 24
/// channels wide, so every such model runs in a few kilobytes.
pub fn random_arch(seed: u64) -> (Shape, Vec<Arch>, u16) {
    let mut rng = SplitMix(seed);
    let mut range = |lo: i32, hi: i32| rng.range(lo, hi) as u16;
    let input = Shape::new(range(3, 12), range(3, 12), range(1, 3));
    let (mut h, mut w, mut c) = (input.height, input.width, input.channels);
    let mut arch = Vec::new();
    for _ in 0..range(1, 4) {
        match range(0, 3) {
            0 | 1 => {
                let (kh, kw) = (range(1, 3.min(h as i32)), range(1, 3.min(w as i32)));
                let window = if range(0, 1) == 0 {
                    Window::same(h, w, kh, kw, range(1, 2), range(1, 2))
                } else {
                    Window::valid(kh, kw, 1, 1)
                };
                let pieces = range(1, 3);
                // Up to 8 units: runs of 4 input channels (the packed path) and not.
                let outputs = pieces * range(1, 8);
                arch.push(if range(0, 1) == 0 {
                    Arch::Conv { window, outputs }
                } else {
                    Arch::ConvRelu { window, outputs }
                });
                (h, w) = window.output_size(h, w).unwrap();
                c = outputs;
                if pieces > 1 {
                    arch.push(Arch::Maxout(pieces));
                    c /= pieces;
                }
            }
            2 if h >= 2 && w >= 2 => {
                // Tiling windows fuse into the conv before them; overlapping ones do not.
                let (kh, kw) = (range(1, 3.min(h as i32)), range(1, 3.min(w as i32)));
                let window = match range(0, 2) {
                    0 => Window::valid(2, 2, 2, 2),
                    1 => Window::valid(kh, kw, kh, kw),
                    _ => Window::valid(kh, kw, 1, 1),
                };
                arch.push(Arch::MaxPool(window));
                (h, w) = window.output_size(h, w).unwrap();
            }
            _ => {
                let window = Window::same(h, w, range(1, 3), range(1, 3), range(1, 2), range(1, 2));
                arch.push(Arch::AvgPool(window));
                (h, w) = window.output_size(h, w).unwrap();
            }
        }
    }
    let classes;
    if range(0, 2) == 0 {
        arch.push(Arch::GlobalAvgPool);
        classes = c;
    } else {
        arch.push(Arch::Flatten);
        classes = range(2, 10);
        let pieces = range(1, 2);
        arch.push(Arch::Dense(classes * pieces));
        if pieces > 1 {
            arch.push(Arch::Maxout(pieces));
        }
    }
    (input, arch, classes)
}

/// Runs every layer of `model`, unfused and with fresh buffers, from int8 input values:
/// the plainest possible execution, to compare planned runs against.
pub fn run_layers(model: &fitnets_shared::Model<'_>, input: &[i8]) -> Vec<i8> {
    let mut x = input.to_vec();
    for layer in model.layers() {
        let layer = layer.expect("a decoded model's layers are valid");
        let mut y = vec![0i8; layer.output.len()];
        k::layer(&layer, &x, &mut y);
        x = y;
    }
    x
}

/// Gives the pieces of every maxout unit after a conv one requantization (multiplier
/// and shift), as export does when asked to share them: each unit takes its piece with
/// the smallest shift's, so every accumulator bound that held still holds. The model
/// computes something else than before, but it is just as valid, and the kernels take
/// their one-requantization-per-unit path on it.
pub fn share_maxout_scales(spec: &mut ModelSpec) {
    for i in 1..spec.layers.len() {
        let LayerSpec::Maxout { pieces } = spec.layers[i] else { continue };
        let LayerSpec::Conv2d { affine, .. } = &mut spec.layers[i - 1] else { continue };
        let pieces = usize::from(pieces);
        for first in (0..affine.shifts.len()).step_by(pieces) {
            let unit = first..first + pieces;
            let pick = unit.clone().min_by_key(|&o| affine.shifts[o]).expect("a unit has pieces");
            let (multiplier, shift) = (affine.multipliers[pick], affine.shifts[pick]);
            for o in unit {
                affine.multipliers[o] = multiplier;
                affine.shifts[o] = shift;
            }
        }
    }
}
