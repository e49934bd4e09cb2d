//! Bit-exactness against the real TFLite: every output of TFLite's *reference* int8
//! kernels in `tests/fixtures/tflite_goldens.json` must be reproduced exactly.
//!
//! The fixture holds single-operator int8 models converted by TensorFlow's converter
//! (full-integer post-training quantization) and run by LiteRT with the `BUILTIN_REF`
//! op resolver: their quantization parameters, int8 weights, int32 biases, per-channel
//! weight scales, window geometry, random int8 inputs and TFLite's outputs. Each case
//! is rebuilt our way -- multipliers from `quantize_multiplier`, SAME padding from
//! `Window::same` -- as a one-layer `ModelSpec` (plus `Flatten`, since a model must end
//! in a vector), encoded, decoded and validated by `Model::from_bytes`, then run twice:
//! layer by layer with the reference kernels, and through `run()` (the planned, fused
//! path) with an identity pixel table so the raw bytes are the int8 inputs.
//!
//! Hermetic: no Python, TensorFlow or network. To regenerate the fixture see
//! `bench/tflite/make_goldens.py` (its header pins the package versions).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use fitnets_shared::format::encode::{AffineSpec, InputSpec, LayerSpec, ModelSpec, encode};
use fitnets_shared::format::{Activation, Quant};
use fitnets_shared::ops::reference as k;
use fitnets_shared::ops::{Op, Window};
use fitnets_shared::quant::quantize_multiplier;
use fitnets_shared::tensor::Shape;
use fitnets_shared::{Model, plan, run};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Fixture {
    meta: Meta,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    tensorflow: String,
    ai_edge_litert: String,
    resolver: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum Kind {
    #[serde(rename = "conv2d")]
    Conv2d,
    #[serde(rename = "conv2d_maxout")]
    Conv2dMaxout,
    #[serde(rename = "max_pool2d")]
    MaxPool2d,
    #[serde(rename = "avg_pool2d")]
    AvgPool2d,
    #[serde(rename = "mean")]
    Mean,
    #[serde(rename = "fully_connected")]
    FullyConnected,
}

impl Kind {
    /// The TFLite operators the converter must have emitted for this kind of case.
    fn tflite_ops(self) -> &'static [&'static str] {
        match self {
            Kind::Conv2d => &["CONV_2D"],
            Kind::Conv2dMaxout => &["CONV_2D", "STRIDED_SLICE", "STRIDED_SLICE", "MAXIMUM"],
            Kind::MaxPool2d => &["MAX_POOL_2D"],
            Kind::AvgPool2d => &["AVERAGE_POOL_2D"],
            Kind::Mean => &["MEAN"],
            Kind::FullyConnected => &["FULLY_CONNECTED"],
        }
    }
}

/// One activation tensor: NHWC shape (batch of one; vectors are `1 x 1 x n`) and its
/// float32 scale. The scale is printed as the shortest decimal that round-trips the
/// float32 TFLite stores, so parsing it back as `f32` gives exactly that float.
#[derive(Clone, Copy, Debug, Deserialize)]
struct Tensor {
    shape: [u16; 3],
    scale: f32,
    zero_point: i8,
}

impl Tensor {
    fn shape(&self) -> Shape {
        Shape::new(self.shape[0], self.shape[1], self.shape[2])
    }

    fn quant(&self) -> Quant {
        Quant { scale: self.scale, zero_point: self.zero_point }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum Padding {
    #[serde(rename = "SAME")]
    Same,
    #[serde(rename = "VALID")]
    Valid,
}

#[derive(Clone, Copy, Debug, Deserialize)]
struct WindowSpec {
    kernel: [u16; 2],
    stride: [u16; 2],
    padding: Padding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum FusedActivation {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "RELU")]
    Relu,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    kind: Kind,
    tflite_ops: Vec<String>,
    input: Tensor,
    output: Tensor,
    window: Option<WindowSpec>,
    activation: Option<FusedActivation>,
    /// TFLite's filter shape: OHWI for CONV_2D, OI for FULLY_CONNECTED.
    weights_shape: Option<Vec<usize>>,
    weights: Option<Vec<i8>>,
    bias: Option<Vec<i32>>,
    /// One float32 per output channel (a per-tensor scale is repeated).
    weight_scales: Option<Vec<f32>>,
    /// Maxout pieces (conv + maxout cases).
    pieces: Option<u16>,
    /// The conv's own output tensor (conv + maxout cases): same quantization as the
    /// maxout output, more channels.
    conv_output: Option<Tensor>,
    inputs: Vec<Vec<i8>>,
    outputs: Vec<Vec<i8>>,
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("tflite_goldens.json");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/tflite_goldens.json exists");
    serde_json::from_str(&text).expect("tflite_goldens.json parses")
}

impl Case {
    fn window(&self) -> Window {
        let w = self.window.unwrap_or_else(|| panic!("{}: no window", self.name));
        let [kh, kw] = w.kernel;
        let [sh, sw] = w.stride;
        match w.padding {
            Padding::Same => Window::same(self.input.shape[0], self.input.shape[1], kh, kw, sh, sw),
            Padding::Valid => Window::valid(kh, kw, sh, sw),
        }
    }

    /// Weights, bias and per-channel requantization, the multipliers computed from the
    /// double `in_scale * w_scale[c] / out_scale` as TFLite's Prepare does.
    fn affine(&self, output: Tensor, fan_in: usize) -> AffineSpec {
        let name = &self.name;
        let weights = self.weights.clone().unwrap_or_else(|| panic!("{name}: no weights"));
        let bias = self.bias.clone().unwrap_or_else(|| panic!("{name}: no bias"));
        let scales = self.weight_scales.as_ref().unwrap_or_else(|| panic!("{name}: no weight scales"));
        let shape = self.weights_shape.as_ref().unwrap_or_else(|| panic!("{name}: no weights shape"));
        assert_eq!(shape[0], bias.len(), "{name}: one bias per output channel");
        assert_eq!(shape[1..].iter().product::<usize>(), fan_in, "{name}: weights shape {shape:?}");
        assert_eq!(weights.len(), bias.len() * fan_in, "{name}: weights length");
        assert_eq!(scales.len(), bias.len(), "{name}: one weight scale per output channel");
        let (multipliers, shifts) = scales
            .iter()
            .map(|&w| quantize_multiplier(f64::from(self.input.scale) * f64::from(w) / f64::from(output.scale)))
            .unzip();
        let activation = match self.activation.unwrap_or_else(|| panic!("{name}: no activation")) {
            FusedActivation::None => Activation::None,
            FusedActivation::Relu => Activation::Relu,
        };
        AffineSpec { activation, weights, bias, multipliers, shifts, output: output.quant() }
    }

    /// The case as a model: its one operator (two for conv + maxout), then `Flatten`
    /// unless the output is already a vector.
    fn model_spec(&self) -> ModelSpec {
        let input = self.input.shape();
        let mut layers = match self.kind {
            Kind::Conv2d => {
                let window = self.window();
                let fan_in = usize::from(window.kernel_h) * usize::from(window.kernel_w) * usize::from(input.channels);
                vec![LayerSpec::Conv2d { window, affine: self.affine(self.output, fan_in) }]
            }
            Kind::Conv2dMaxout => {
                let window = self.window();
                let fan_in = usize::from(window.kernel_h) * usize::from(window.kernel_w) * usize::from(input.channels);
                let conv_output = self.conv_output.unwrap_or_else(|| panic!("{}: no conv output", self.name));
                let pieces = self.pieces.unwrap_or_else(|| panic!("{}: no pieces", self.name));
                vec![
                    LayerSpec::Conv2d { window, affine: self.affine(conv_output, fan_in) },
                    LayerSpec::Maxout { pieces },
                ]
            }
            Kind::MaxPool2d => vec![LayerSpec::MaxPool2d { window: self.window() }],
            Kind::AvgPool2d => vec![LayerSpec::AvgPool2d { window: self.window() }],
            Kind::Mean => {
                let real = f64::from(self.input.scale) / f64::from(self.output.scale);
                let (multiplier, shift) = quantize_multiplier(real);
                vec![LayerSpec::GlobalAvgPool { multiplier, shift, output: self.output.quant() }]
            }
            Kind::FullyConnected => {
                vec![LayerSpec::FullyConnected { affine: self.affine(self.output, usize::from(input.channels)) }]
            }
        };
        let out = self.output.shape();
        if out.height != 1 || out.width != 1 {
            layers.push(LayerSpec::Flatten);
        }
        let classes = out.len();
        // Identity pixel table: raw byte `p` is the int8 value `p as i8`, so `run()`
        // sees exactly the exported int8 inputs.
        let identity: Vec<i8> = (0..=255u8).map(|p| p as i8).collect();
        ModelSpec {
            name: self.name.clone(),
            input: InputSpec {
                shape: input,
                quant: self.input.quant(),
                pixel_table: identity.repeat(usize::from(input.channels)),
            },
            labels: (0..classes).map(|c| format!("o{c}")).collect(),
            layers,
        }
    }
}

/// The conv + maxout case through the fused kernel directly.
fn run_conv_maxout_fused(model: &Model<'_>, input: &[i8], out_shape: Shape) -> Vec<i8> {
    let mut layers = model.layers().map(|l| l.expect("validated model"));
    let conv_layer = layers.next().expect("conv layer");
    let (Op::Conv2d(conv), Some(Op::Maxout { pieces })) = (conv_layer.op, layers.next().map(|l| l.op)) else {
        panic!("conv + maxout model is not conv then maxout");
    };
    let mut y = vec![0i8; out_shape.len()];
    k::conv2d_maxout(&conv, pieces, input, conv_layer.input, &mut y, out_shape);
    y
}

/// Where output `index` of a `shape` tensor is, for messages.
fn position(shape: Shape, index: usize) -> String {
    let c = index % usize::from(shape.channels);
    let cell = index / usize::from(shape.channels);
    format!("(y={}, x={}, c={c})", cell / usize::from(shape.width), cell % usize::from(shape.width))
}

/// Compares `ours` with TFLite's `theirs`, appending one line per differing value (at
/// most a few per call) to `report`; returns the number of differences.
fn compare(report: &mut String, case: &Case, path: &str, sample: usize, ours: &[i8], theirs: &[i8]) -> usize {
    assert_eq!(ours.len(), theirs.len(), "{}: output length", case.name);
    let mut differ = 0;
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        if a != b {
            if differ < 8 {
                let at = position(case.output.shape(), i);
                let _ = writeln!(
                    report,
                    "  {} [{path}] input #{sample} output[{i}] {at}: ours {a}, TFLite {b} ({:+})",
                    case.name,
                    i32::from(a) - i32::from(b)
                );
            }
            differ += 1;
        }
    }
    differ
}

#[test]
fn every_tflite_reference_output_is_reproduced_exactly() {
    let fixture = fixture();
    assert_eq!(fixture.meta.resolver, "BUILTIN_REF", "goldens must come from TFLite's reference kernels");
    println!(
        "goldens: TensorFlow {} converter, LiteRT {} {} kernels",
        fixture.meta.tensorflow, fixture.meta.ai_edge_litert, fixture.meta.resolver
    );

    let mut report = String::new();
    let (mut compared, mut differ) = (0usize, 0usize);
    let mut kinds = BTreeMap::new();
    for case in &fixture.cases {
        let name = &case.name;
        assert_eq!(case.tflite_ops, case.kind.tflite_ops(), "{name}: unexpected TFLite graph");
        assert_eq!(case.inputs.len(), case.outputs.len(), "{name}: one output per input");
        assert!(!case.inputs.is_empty(), "{name}: no samples");

        let blob = encode(&case.model_spec()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Our shape arithmetic (padding, output size) must agree with TFLite's.
        let first = model.layers().next().unwrap().unwrap();
        assert_eq!(first.input, case.input.shape(), "{name}: input shape");
        let last_op = model.layers().map(|l| l.unwrap()).filter(|l| !matches!(l.op, Op::Flatten)).last().unwrap();
        let out_shape = case.output.shape();
        assert_eq!(last_op.output, out_shape, "{name}: output shape (window {:?})", case.window);
        assert_eq!(model.output_quant(), case.output.quant(), "{name}: output quantization");

        let mut arena = vec![0u8; plan::arena_bytes(&model) as usize];
        let mut case_differ = 0;
        for (sample, (input, expected)) in case.inputs.iter().zip(&case.outputs).enumerate() {
            assert_eq!(input.len(), case.input.shape().len(), "{name}: input #{sample} length");
            assert_eq!(expected.len(), out_shape.len(), "{name}: output #{sample} length");

            let ours = fitnets_tests::run_layers(&model, input);
            case_differ += compare(&mut report, case, "layers", sample, &ours, expected);

            let pixels: Vec<u8> = input.iter().map(|&v| v as u8).collect();
            let prediction = run(&model, &pixels, &mut arena).unwrap_or_else(|e| panic!("{name}: {e}"));
            case_differ += compare(&mut report, case, "run", sample, prediction.logits, expected);

            if case.kind == Kind::Conv2dMaxout {
                let fused = run_conv_maxout_fused(&model, input, out_shape);
                case_differ += compare(&mut report, case, "fused", sample, &fused, expected);
            }
        }
        let values = case.outputs.iter().map(Vec::len).sum::<usize>();
        println!(
            "{name:28} {:40} {} inputs, {values:5} outputs: {}",
            case.tflite_ops.join("+"),
            case.inputs.len(),
            if case_differ == 0 { "all equal".to_string() } else { format!("{case_differ} differ") }
        );
        compared += values;
        differ += case_differ;
        *kinds.entry(case.kind).or_insert(0) += 1;
    }

    for kind in [Kind::Conv2d, Kind::Conv2dMaxout, Kind::MaxPool2d, Kind::AvgPool2d, Kind::Mean, Kind::FullyConnected] {
        assert!(kinds.contains_key(&kind), "fixture has no {kind:?} case");
    }
    assert!(
        differ == 0,
        "{differ} values differ from TFLite's reference kernels (of {compared} outputs, each checked by every \
         path):\n{report}"
    );
    println!("{} cases, {compared} outputs, all equal to TFLite's reference kernels", fixture.cases.len());
}
