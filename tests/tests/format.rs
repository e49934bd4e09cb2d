//! The blob format: round trip, every truncation and bit flip rejected, each validation
//! rule enforced with its typed error, random bytes never panic.

use fitnets_shared::format::encode::{LayerSpec, ModelSpec, encode, encode_unchecked};
use fitnets_shared::format::{Buffer, DecodeError, LayerError, MAGIC, Model, Section, VERSION};
use fitnets_shared::ops::{Op, Window};
use fitnets_shared::tensor::Shape;
use fitnets_tests::{paper_fitnet, tiny};
use proptest::prelude::*;

#[test]
fn round_trip_keeps_every_field() {
    let spec = tiny(7);
    let blob = encode(&spec).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    assert_eq!(model.name(), spec.name);
    assert_eq!(model.input_shape(), spec.input.shape);
    assert_eq!(model.input_quant(), spec.input.quant);
    assert_eq!(model.pixel_table().as_slice(), spec.input.pixel_table.as_slice());
    assert_eq!(model.labels().collect::<Vec<_>>(), spec.labels);
    assert_eq!(model.label(2), Some("class2"));
    assert_eq!(model.label(3), None);
    let layers: Vec<_> = model.layers().map(Result::unwrap).collect();
    assert_eq!(layers.len(), spec.layers.len());
    for (layer, spec) in layers.iter().zip(&spec.layers) {
        match (layer.op, spec) {
            (Op::Conv2d(conv), LayerSpec::Conv2d { window, affine }) => {
                assert_eq!(conv.window, *window);
                assert_eq!(conv.weights.as_slice(), affine.weights.as_slice());
                assert_eq!(conv.bias.iter().collect::<Vec<_>>(), affine.bias);
                assert_eq!(conv.requant.multipliers.iter().collect::<Vec<_>>(), affine.multipliers);
                assert_eq!(conv.requant.shifts.as_slice(), affine.shifts.as_slice());
                assert_eq!(conv.output.zero_point, i32::from(affine.output.zero_point));
            }
            (Op::FullyConnected(fc), LayerSpec::FullyConnected { affine }) => {
                assert_eq!(fc.weights.as_slice(), affine.weights.as_slice());
                assert_eq!(fc.bias.iter().collect::<Vec<_>>(), affine.bias);
            }
            (Op::Maxout { pieces }, LayerSpec::Maxout { pieces: p }) => assert_eq!(pieces, *p),
            (Op::MaxPool2d(w), LayerSpec::MaxPool2d { window }) => assert_eq!(w, *window),
            (Op::AvgPool2d(w), LayerSpec::AvgPool2d { window }) => assert_eq!(w, *window),
            (Op::Flatten, LayerSpec::Flatten) => {}
            (op, spec) => panic!("layer {op:?} decoded from {spec:?}"),
        }
    }
    assert_eq!(layers.last().unwrap().output, Shape::vector(3));
}

#[test]
fn weights_are_borrowed_from_the_blob() {
    let blob = encode(&tiny(1)).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let range = blob.as_ptr_range();
    for layer in model.layers() {
        if let Op::Conv2d(conv) = layer.unwrap().op {
            assert!(range.contains(&conv.weights.0.as_ptr()), "weights point into the blob, not a copy");
        }
    }
}

#[test]
fn decodes_at_any_alignment() {
    let blob = encode(&tiny(1)).unwrap();
    for shift in 0..8 {
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(&blob);
        let model = Model::from_bytes(&buf[shift..]).unwrap();
        assert_eq!(model.layers().count(), 8);
    }
}

#[test]
fn every_truncation_is_rejected() {
    let blob = encode(&tiny(1)).unwrap();
    for len in 0..blob.len() {
        let err = Model::from_bytes(&blob[..len]).unwrap_err();
        match len {
            0..=9 => assert_eq!(err, DecodeError::Truncated, "length {len}"),
            _ => assert!(matches!(err, DecodeError::Checksum { .. }), "length {len}: {err:?}"),
        }
    }
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let blob = encode(&tiny(1)).unwrap();
    for bit in 0..blob.len() * 8 {
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = Model::from_bytes(&bad).unwrap_err();
        let expected = match bit / 8 {
            0..=3 => matches!(err, DecodeError::BadMagic),
            4..=5 => matches!(err, DecodeError::UnsupportedVersion { .. }),
            _ => matches!(err, DecodeError::Checksum { .. }),
        };
        assert!(expected, "bit {bit}: {err:?}");
    }
}

/// Re-encodes a mutated spec without validation and checks the decoder's verdict.
fn check(mutate: impl FnOnce(&mut ModelSpec), expected: DecodeError) {
    let mut spec = tiny(1);
    mutate(&mut spec);
    let blob = encode_unchecked(&spec).unwrap();
    assert_eq!(Model::from_bytes(&blob).unwrap_err(), expected);
}

fn conv(spec: &mut ModelSpec, index: usize) -> (&mut Window, &mut fitnets_shared::format::encode::AffineSpec) {
    match &mut spec.layers[index] {
        LayerSpec::Conv2d { window, affine } => (window, affine),
        other => panic!("layer {index} is {other:?}"),
    }
}

fn layer_error(index: u16, error: LayerError) -> DecodeError {
    DecodeError::Layer { index, error }
}

#[test]
fn each_rule_has_its_error() {
    check(|s| s.name = "x".repeat(65), DecodeError::NameTooLong);
    check(|s| s.labels[1] = "y".repeat(33), DecodeError::LabelTooLong { class: 1 });
    check(|s| s.labels.clear(), DecodeError::NoClasses);
    check(|s| s.layers.clear(), DecodeError::NoLayers);
    check(|s| s.input.shape.width = 0, DecodeError::Input { error: LayerError::Empty });
    check(|s| s.input.quant.scale = f32::NAN, DecodeError::Input { error: LayerError::Scale });
    check(
        |s| {
            s.input.pixel_table.pop();
        },
        DecodeError::Input {
            error: LayerError::BufferLength { buffer: Buffer::PixelTable, expected: 256, found: 255 },
        },
    );
    check(|s| conv(s, 0).0.kernel_h = 0, layer_error(0, LayerError::Window));
    check(|s| conv(s, 0).0.stride_w = 0, layer_error(0, LayerError::Window));
    check(|s| conv(s, 0).0.pad_top = 3, layer_error(0, LayerError::Window));
    // A 3x3 valid conv on the 4x4 pooled map, then a kernel larger than it.
    check(|s| *conv(s, 3).0 = Window::valid(5, 5, 1, 1), layer_error(3, LayerError::Window));
    check(
        |s| {
            conv(s, 0).1.weights.pop();
        },
        layer_error(0, LayerError::BufferLength { buffer: Buffer::Weights, expected: 72, found: 71 }),
    );
    check(
        |s| {
            conv(s, 0).1.multipliers.pop();
        },
        layer_error(0, LayerError::BufferLength { buffer: Buffer::Multipliers, expected: 32, found: 28 }),
    );
    check(
        |s| {
            conv(s, 0).1.shifts.push(0);
        },
        layer_error(0, LayerError::BufferLength { buffer: Buffer::Shifts, expected: 8, found: 9 }),
    );
    check(|s| conv(s, 0).1.weights[9 * 2 + 4] = -128, layer_error(0, LayerError::WeightRange { channel: 2 }));
    check(|s| conv(s, 0).1.multipliers[5] = (1 << 30) - 1, layer_error(0, LayerError::Multiplier { channel: 5 }));
    check(|s| conv(s, 0).1.multipliers[5] = -5, layer_error(0, LayerError::Multiplier { channel: 5 }));
    check(|s| conv(s, 0).1.shifts[6] = 31, layer_error(0, LayerError::Shift { channel: 6 }));
    check(|s| conv(s, 0).1.shifts[6] = -32, layer_error(0, LayerError::Shift { channel: 6 }));
    check(|s| conv(s, 0).1.bias[7] = i32::MAX, layer_error(0, LayerError::Overflow { channel: 7 }));
    // A left shift that could push the largest accumulator past i32.
    check(|s| conv(s, 0).1.shifts[1] = 20, layer_error(0, LayerError::Overflow { channel: 1 }));
    check(|s| conv(s, 0).1.output.scale = 0.0, layer_error(0, LayerError::Scale));
    check(
        |s| s.layers[1] = LayerSpec::Maxout { pieces: 3 },
        layer_error(1, LayerError::Pieces { channels: 8, pieces: 3 }),
    );
    check(|s| s.layers[1] = LayerSpec::Maxout { pieces: 0 }, layer_error(1, LayerError::Empty));
    check(|s| drop(s.layers.remove(5)), layer_error(5, LayerError::NotAVector));
    check(|s| s.layers.truncate(7), DecodeError::OutputShape { classes: 3, found: Shape::vector(6) });
    check(|s| s.labels.push("extra".into()), DecodeError::OutputShape { classes: 4, found: Shape::vector(3) });
}

#[test]
fn trailing_and_malformed_bodies_are_rejected() {
    let blob = encode(&tiny(1)).unwrap();
    let reseal = |body: &[u8]| {
        let mut out = blob[..6].to_vec();
        out.extend_from_slice(body);
        let crc = fitnets_shared::format::CRC32.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    };
    let body = &blob[6..blob.len() - 4];
    let mut longer = body.to_vec();
    longer.push(0);
    assert_eq!(Model::from_bytes(&reseal(&longer)).unwrap_err(), DecodeError::TrailingBytes);
    // Cut inside the last layer: a correct checksum over a body that ends too soon.
    let err = Model::from_bytes(&reseal(&body[..body.len() - 1])).unwrap_err();
    assert_eq!(err, DecodeError::Malformed { section: Section::Layer { index: 7 } });
    assert_eq!(Model::from_bytes(&reseal(&[])).unwrap_err(), DecodeError::Malformed { section: Section::Header });
    let mut other_version = blob.clone();
    other_version[4..6].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(Model::from_bytes(&other_version).unwrap_err(), DecodeError::UnsupportedVersion { found: VERSION + 1 });
    assert_eq!(&blob[..4], &MAGIC);
}

#[test]
fn overhead_of_a_fitnet_sized_blob() {
    // The paper's FitNet: the bytes that are not weights, biases or per-channel
    // requantization parameters are the format's overhead.
    let spec = paper_fitnet(3);
    let blob = encode(&spec).unwrap();
    let payload: usize = spec
        .layers
        .iter()
        .map(|l| match l {
            LayerSpec::Conv2d { affine, .. } | LayerSpec::FullyConnected { affine } => {
                affine.weights.len() + 4 * affine.bias.len() + 4 * affine.multipliers.len() + affine.shifts.len()
            }
            _ => 0,
        })
        .sum();
    let overhead = blob.len() - payload;
    let percent = 100.0 * overhead as f64 / blob.len() as f64;
    println!("paper FitNet blob: {} bytes, payload {payload}, overhead {overhead} ({percent:.2}%)", blob.len());
    assert!(percent <= 3.0, "overhead {percent:.2}% exceeds 3%");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..Default::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Model::from_bytes(&bytes);
    }

    /// Random bytes behind a valid prefix and checksum reach the body decoder.
    #[test]
    fn random_bodies_with_valid_checksums_never_panic(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&VERSION.to_le_bytes());
        blob.extend_from_slice(&body);
        let crc = fitnets_shared::format::CRC32.checksum(&blob);
        blob.extend_from_slice(&crc.to_le_bytes());
        let _ = Model::from_bytes(&blob);
    }
}
