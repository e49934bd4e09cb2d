//! Property tests for every reference kernel: random shapes, strides, paddings, zero
//! points, scales and multipliers. Each kernel must equal an independent formulation
//! exactly and stay within one LSB of the real-valued result.

mod common;

use common::{OwnedRequant, Rng, finish_exact, finish_real, i8_bytes, i32_bytes, stage};
use fitnets_shared::ops::reference as k;
use fitnets_shared::ops::{Conv2d, FullyConnected, Mean, Window};
use fitnets_shared::quant::{max_abs_offset, quantize_multiplier};
use fitnets_shared::tensor::{I8s, I32s, Shape};
use proptest::prelude::*;

/// A window that fits an input of `h x w`, with paddings smaller than the kernel.
fn window_for(h: u16, w: u16) -> impl Strategy<Value = Window> {
    (1..=h.min(5) + 1, 1..=w.min(5) + 1, 1u16..=3, 1u16..=3).prop_flat_map(move |(kh, kw, sh, sw)| {
        (0..kh, 0..kh, 0..kw, 0..kw).prop_filter_map("window must fit", move |(pt, pb, pl, pr)| {
            let win = Window {
                kernel_h: kh,
                kernel_w: kw,
                stride_h: sh,
                stride_w: sw,
                pad_top: pt,
                pad_bottom: pb,
                pad_left: pl,
                pad_right: pr,
            };
            win.output_size(h, w).map(|_| win)
        })
    })
}

fn image() -> impl Strategy<Value = Shape> {
    (1u16..=9, 1u16..=9, 1u16..=6).prop_map(|(h, w, c)| Shape::new(h, w, c))
}

/// Input value at `(y, x, c)` of the zero-point-padded image, or `None` in the padding.
fn cell(input: &[i8], shape: Shape, y: i64, x: i64, c: usize) -> Option<i8> {
    if y < 0 || x < 0 || y >= i64::from(shape.height) || x >= i64::from(shape.width) {
        return None;
    }
    Some(input[shape.index(y as usize, x as usize, c)])
}

/// Scales and the per-channel (multiplier, shift) they imply, with real multipliers
/// spanning tiny (shift near -31) to above one (left shifts).
struct Scales {
    input: f64,
    weights: Vec<f64>,
    output: f64,
    pairs: Vec<(i32, i8)>,
}

fn scales(rng: &mut Rng, outputs: usize, log2_range: (i64, i64)) -> Scales {
    let input = 2f64.powi(rng.range(-8, 0) as i32) * (1.0 + rng.range(0, 99) as f64 / 100.0);
    let output = 2f64.powi(rng.range(-6, 2) as i32) * (1.0 + rng.range(0, 99) as f64 / 100.0);
    let weights: Vec<f64> = (0..outputs)
        .map(|_| {
            let real =
                2f64.powi(rng.range(log2_range.0, log2_range.1) as i32) * (1.0 + rng.range(0, 999) as f64 / 1000.0);
            real * output / input
        })
        .collect();
    let pairs = weights.iter().map(|w| quantize_multiplier(input * w / output)).collect();
    Scales { input, weights, output, pairs }
}

/// True when no accumulator can overflow (what the decoder checks).
fn bounded(weights: &[i8], bias: &[i32], fan_in: usize, zp: i8, pairs: &[(i32, i8)]) -> bool {
    weights.chunks(fan_in).zip(bias).zip(pairs).all(|((row, &b), &(_, s))| {
        let sum: i64 = row.iter().map(|&w| i64::from(w.unsigned_abs())).sum();
        sum * max_abs_offset(zp) + i64::from(b).abs() <= i64::from(i32::MAX >> s.max(0))
    })
}

proptest! {
    #![proptest_config(common::config(1))]

    #[test]
    fn conv2d(
        (shape, window) in image().prop_flat_map(|s| (Just(s), window_for(s.height, s.width))),
        outputs in 1u16..=6,
        in_zp in any::<i8>(),
        out_zp in any::<i8>(),
        relu in any::<bool>(),
        log2_lo in -30i64..=2,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let outputs_n = usize::from(outputs);
        let fan_in = usize::from(window.kernel_h) * usize::from(window.kernel_w) * usize::from(shape.channels);
        let input = rng.i8s(shape.len());
        let weights = rng.weights(fan_in * outputs_n);
        let bias: Vec<i32> = (0..outputs_n).map(|_| rng.range(-100_000, 100_000) as i32).collect();
        let sc = scales(&mut rng, outputs_n, (log2_lo, log2_lo + 4));
        prop_assume!(bounded(&weights, &bias, fan_in, in_zp, &sc.pairs));
        let (wb, bb, rq) = (i8_bytes(&weights), i32_bytes(&bias), OwnedRequant::new(&sc.pairs));
        let out_stage = stage(out_zp, relu);
        let conv = Conv2d {
            window,
            weights: I8s(&wb),
            bias: I32s(&bb),
            requant: rq.view(),
            input_zero_point: i32::from(in_zp),
            output: out_stage,
        };
        let (oh, ow) = window.output_size(shape.height, shape.width).unwrap();
        let out_shape = Shape::new(oh, ow, outputs);
        let mut output = vec![0i8; out_shape.len()];
        k::conv2d(&conv, &input, shape, &mut output, out_shape);

        for oy in 0..usize::from(oh) {
            for ox in 0..usize::from(ow) {
                for o in 0..outputs_n {
                    let mut acc = i64::from(bias[o]);
                    let mut real = bias[o] as f64 * sc.input * sc.weights[o];
                    for ky in 0..usize::from(window.kernel_h) {
                        for kx in 0..usize::from(window.kernel_w) {
                            for c in 0..usize::from(shape.channels) {
                                let y = (oy * usize::from(window.stride_h) + ky) as i64 - i64::from(window.pad_top);
                                let x = (ox * usize::from(window.stride_w) + kx) as i64 - i64::from(window.pad_left);
                                // Padding holds the input zero point: it contributes nothing.
                                let v = cell(&input, shape, y, x, c).unwrap_or(in_zp);
                                let w = weights[((o * usize::from(window.kernel_h) + ky) * usize::from(window.kernel_w) + kx) * usize::from(shape.channels) + c];
                                acc += (i64::from(v) - i64::from(in_zp)) * i64::from(w);
                                real += (f64::from(v) - f64::from(in_zp)) * sc.input * f64::from(w) * sc.weights[o];
                            }
                        }
                    }
                    let got = output[out_shape.index(oy, ox, o)];
                    let (m, s) = sc.pairs[o];
                    prop_assert_eq!(got, finish_exact(acc, m, i32::from(s), out_stage), "at {},{},{}", oy, ox, o);
                    let real_q = (real / sc.output + f64::from(out_zp)).clamp(f64::from(out_stage.min), f64::from(out_stage.max));
                    prop_assert!((f64::from(got) - real_q).abs() <= 1.0 + 1e-6, "got {} real {}", got, real_q);
                }
            }
        }

        // Fusing maxout must not change a bit.
        for pieces in 1..=outputs {
            if outputs % pieces != 0 { continue; }
            let fused_shape = Shape::new(oh, ow, outputs / pieces);
            let mut fused = vec![0i8; fused_shape.len()];
            k::conv2d_maxout(&conv, pieces, &input, shape, &mut fused, fused_shape);
            let mut separate = vec![0i8; fused_shape.len()];
            k::maxout(pieces, &output, out_shape, &mut separate);
            prop_assert_eq!(&fused, &separate);
        }
    }

    #[test]
    fn fully_connected(
        inputs in 1usize..=300,
        outputs in 1u16..=12,
        in_zp in any::<i8>(),
        out_zp in any::<i8>(),
        relu in any::<bool>(),
        log2_lo in -30i64..=1,
        extreme_bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let n = usize::from(outputs);
        let input = rng.i8s(inputs);
        let weights = rng.weights(inputs * n);
        let limit = if extreme_bias { 1_500_000_000 } else { 50_000 };
        let bias: Vec<i32> = (0..n).map(|_| rng.range(-limit, limit) as i32).collect();
        let sc = scales(&mut rng, n, (log2_lo, log2_lo + 3));
        prop_assume!(bounded(&weights, &bias, inputs, in_zp, &sc.pairs));
        let (wb, bb, rq) = (i8_bytes(&weights), i32_bytes(&bias), OwnedRequant::new(&sc.pairs));
        let out_stage = stage(out_zp, relu);
        let fc = FullyConnected { weights: I8s(&wb), bias: I32s(&bb), requant: rq.view(), input_zero_point: i32::from(in_zp), output: out_stage };
        let mut output = vec![0i8; n];
        k::fully_connected(&fc, &input, &mut output);
        for o in 0..n {
            let acc: i64 = i64::from(bias[o]) + input.iter().zip(&weights[o * inputs..(o + 1) * inputs])
                .map(|(&x, &w)| (i64::from(x) - i64::from(in_zp)) * i64::from(w)).sum::<i64>();
            let (m, s) = sc.pairs[o];
            prop_assert_eq!(output[o], finish_exact(acc, m, i32::from(s), out_stage));
            let real = finish_real(acc, sc.input * sc.weights[o] / sc.output, out_stage);
            prop_assert!((f64::from(output[o]) - real).abs() <= 1.0 + 1e-6, "got {} real {}", output[o], real);
        }
        for pieces in 1..=outputs {
            if outputs % pieces != 0 { continue; }
            let mut fused = vec![0i8; n / usize::from(pieces)];
            k::fully_connected_maxout(&fc, pieces, &input, &mut fused);
            let expected: Vec<i8> = output.chunks(usize::from(pieces)).map(|c| *c.iter().max().unwrap()).collect();
            prop_assert_eq!(fused, expected);
        }
    }

    #[test]
    fn maxout(shape in image(), pieces in 1u16..=4, seed in any::<u64>()) {
        let shape = Shape::new(shape.height, shape.width, shape.channels * pieces);
        let input = Rng(seed).i8s(shape.len());
        let units = usize::from(shape.channels / pieces);
        let mut output = vec![0i8; shape.len() / usize::from(pieces)];
        k::maxout(pieces, &input, shape, &mut output);
        for y in 0..usize::from(shape.height) {
            for x in 0..usize::from(shape.width) {
                for g in 0..units {
                    let expected = (0..usize::from(pieces)).map(|p| input[shape.index(y, x, g * usize::from(pieces) + p)]).max().unwrap();
                    prop_assert_eq!(output[(y * usize::from(shape.width) + x) * units + g], expected);
                }
            }
        }
    }

    #[test]
    fn pooling(
        (shape, window) in image().prop_flat_map(|s| (Just(s), window_for(s.height, s.width))),
        seed in any::<u64>(),
    ) {
        let input = Rng(seed).i8s(shape.len());
        let (oh, ow) = window.output_size(shape.height, shape.width).unwrap();
        let out_shape = Shape::new(oh, ow, shape.channels);
        let mut max_out = vec![0i8; out_shape.len()];
        let mut avg_out = vec![0i8; out_shape.len()];
        k::max_pool2d(&window, &input, shape, &mut max_out, out_shape);
        k::avg_pool2d(&window, &input, shape, &mut avg_out, out_shape);
        for oy in 0..usize::from(oh) {
            for ox in 0..usize::from(ow) {
                for c in 0..usize::from(shape.channels) {
                    let inside: Vec<i8> = (0..i64::from(window.kernel_h)).flat_map(|ky| (0..i64::from(window.kernel_w)).map(move |kx| (ky, kx)))
                        .filter_map(|(ky, kx)| cell(&input, shape, oy as i64 * i64::from(window.stride_h) + ky - i64::from(window.pad_top), ox as i64 * i64::from(window.stride_w) + kx - i64::from(window.pad_left), c))
                        .collect();
                    prop_assert!(!inside.is_empty(), "every window overlaps the image");
                    let at = out_shape.index(oy, ox, c);
                    prop_assert_eq!(max_out[at], *inside.iter().max().unwrap());
                    let sum: i128 = inside.iter().map(|&v| i128::from(v)).sum();
                    let n = inside.len() as i128;
                    prop_assert_eq!(i128::from(avg_out[at]), common::round_half_away(sum, n));
                    prop_assert!((f64::from(avg_out[at]) - sum as f64 / n as f64).abs() <= 0.5);
                }
            }
        }
    }

    #[test]
    fn global_avg_pool(
        shape in (1u16..=24, 1u16..=24, 1u16..=8).prop_map(|(h, w, c)| Shape::new(h, w, c)),
        in_zp in any::<i8>(),
        out_zp in any::<i8>(),
        log2_ratio in -20i32..=3,
        fraction in 0u32..1000,
        seed in any::<u64>(),
    ) {
        let input = Rng(seed).i8s(shape.len());
        let ratio = 2f64.powi(log2_ratio) * (1.0 + f64::from(fraction) / 1000.0);
        let (multiplier, shift) = quantize_multiplier(ratio);
        let cells = u32::from(shape.height) * u32::from(shape.width);
        let (m_eff, s_eff) = k::effective_multiplier(multiplier, i32::from(shift), cells);
        prop_assume!(255 * i64::from(cells) <= i64::from(i32::MAX >> s_eff.max(0)));
        let out_stage = stage(out_zp, false);
        let mean = Mean { multiplier, shift: i32::from(shift), input_zero_point: i32::from(in_zp), output: out_stage };
        let mut output = vec![0i8; usize::from(shape.channels)];
        k::global_avg_pool(&mean, &input, shape, &mut output);
        for c in 0..usize::from(shape.channels) {
            let sum: i64 = (0..cells as usize).map(|i| i64::from(input[i * usize::from(shape.channels) + c])).sum();
            let acc = sum - i64::from(in_zp) * i64::from(cells);
            prop_assert_eq!(output[c], finish_exact(acc, m_eff, s_eff, out_stage));
            // Real: mean(x - zp) * in_scale / out_scale + out_zp.
            let real = finish_real(acc, ratio / f64::from(cells), out_stage);
            prop_assert!((f64::from(output[c]) - real).abs() <= 1.0 + 1e-3, "got {} real {}", output[c], real);
        }
    }

    #[test]
    fn argmax_takes_the_first_maximum(logits in proptest::collection::vec(any::<i8>(), 1..64)) {
        let got = k::argmax(&logits);
        let best = *logits.iter().max().unwrap();
        prop_assert_eq!(got, logits.iter().position(|&v| v == best).unwrap());
    }
}

/// Saturation: the largest accumulators and clamps at both ends.
#[test]
fn fully_connected_saturates_at_both_ends() {
    let weights = i8_bytes(&[127, 127, -127, -127]);
    let bias = i32_bytes(&[0, 0]);
    let rq = OwnedRequant::new(&[(i32::MAX, 0), (i32::MAX, 0)]);
    let fc = FullyConnected {
        weights: I8s(&weights),
        bias: I32s(&bias),
        requant: rq.view(),
        input_zero_point: -128,
        output: stage(0, false),
    };
    let mut out = [0i8; 2];
    k::fully_connected(&fc, &[127, 127], &mut out);
    assert_eq!(out, [127, -128]);
}

/// Average pooling ties round away from zero (TFLite), not to even.
#[test]
fn avg_pool_ties_round_away_from_zero() {
    let window = Window::valid(1, 2, 1, 2);
    let shape = Shape::new(1, 2, 1);
    let check = |input: [i8; 2], expected: i8| {
        let mut out = [0i8; 1];
        k::avg_pool2d(&window, &input, shape, &mut out, Shape::new(1, 1, 1));
        assert_eq!(out[0], expected, "avg of {input:?}");
    };
    check([1, 2], 2); // 1.5 -> 2
    check([-1, -2], -2); // -1.5 -> -2
    check([2, 3], 3); // 2.5 -> 3 (half to even would give 2)
    check([-128, -127], -128); // -127.5 -> -128
}

/// A conv computed by hand: 3x3 SAME on a 1x1x2 image, so only the centre tap lies
/// inside the image. acc = 7 + (10 - 5) * 3 + (-20 - 5) * -4 = 122; M = 0.5, shift -2:
/// SRDHM(122, 0.5) = 61, 61 / 4 = 15.25 -> 15; plus the output zero point -3 -> 12.
#[test]
fn conv_by_hand() {
    let mut weights = vec![0i8; 9 * 2];
    weights[4 * 2] = 3; // centre tap, channel 0
    weights[4 * 2 + 1] = -4; // centre tap, channel 1
    // Corner taps fall in the padding and must not count.
    weights[0] = 100;
    let (wb, bb, rq) = (i8_bytes(&weights), i32_bytes(&[7]), OwnedRequant::new(&[(1 << 30, -2)]));
    let conv = Conv2d {
        window: Window::same(1, 1, 3, 3, 1, 1),
        weights: I8s(&wb),
        bias: I32s(&bb),
        requant: rq.view(),
        input_zero_point: 5,
        output: stage(-3, false),
    };
    let mut out = [0i8; 1];
    k::conv2d(&conv, &[10, -20], Shape::new(1, 1, 2), &mut out, Shape::new(1, 1, 1));
    assert_eq!(out, [12]);
}

/// MEAN by hand: in_scale / out_scale = 1 gives (2^30, 1); N = 2 gives k = 1,
/// M' = 2^30, shift' = 0. The mean of [1, 2] is 1.5 -> 2 but the mean of [-1, -2] is
/// -1.5 -> -1: SRDHM rounds ties towards +inf, not away from zero.
#[test]
fn mean_ties_round_up() {
    let mean = Mean { multiplier: 1 << 30, shift: 1, input_zero_point: 0, output: stage(0, false) };
    let shape = Shape::new(1, 2, 1);
    let check = |input: [i8; 2], expected: i8| {
        let mut out = [0i8; 1];
        k::global_avg_pool(&mean, &input, shape, &mut out);
        assert_eq!(out[0], expected, "mean of {input:?}");
    };
    assert_eq!(k::effective_multiplier(1 << 30, 1, 2), (1 << 30, 0));
    check([1, 2], 2);
    check([-1, -2], -1);
    check([-128, -128], -128);
}
