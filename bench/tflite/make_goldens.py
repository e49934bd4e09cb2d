#!/usr/bin/env python3
"""Golden outputs of TFLite's *reference* int8 kernels for fitnets' bit-exactness test.

Builds small single-operator Keras models (plus one conv followed by a maxout made of
Keras ops), converts each with full-integer int8 post-training quantization, runs it
with TFLite's reference op resolver (``BUILTIN_REF``) on random int8 inputs, and writes
everything fitnets' format needs to rebuild the same layer -- quantization parameters,
int8 weights, int32 biases, per-channel weight scales, window geometry -- together
with the inputs and TFLite's outputs, to ``tests/fixtures/tflite_goldens.json``.
``tests/tests/tflite.rs`` replays every case with fitnets' reference kernels and
requires every output to be equal. That test needs neither Python nor TensorFlow; this
script is only needed to regenerate the fixture.

Pinned versions (the fixture was made with exactly these, on Python 3.11):

    tensorflow-cpu==2.21.0   (converter; it brings keras 3 and numpy)
    ai-edge-litert==2.3.0    (interpreter with the reference kernels, flatbuffer schema)

Regenerate, from the repository root, with a virtualenv kept outside the repository
(never commit it):

    VENV="$(mktemp -d)/tflite-venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install tensorflow-cpu==2.21.0 ai-edge-litert==2.3.0
    "$VENV/bin/python" bench/tflite/make_goldens.py
    cargo test -p fitnets-tests --test tflite

The output is deterministic (seeded Keras initializers, representative data and
inputs): rerunning with the pinned versions rewrites the same bytes. The script also
prints, per case, how many outputs TFLite's *optimized* kernels would have given
differently -- a reminder that only the reference kernels are the target.

What is exported, per case (JSON, one case per line):

- ``input`` / ``output``: NHWC shape with a batch of one (vectors are ``[1, 1, n]``),
  float32 ``scale`` (printed as the shortest decimal that round-trips the float32
  TFLite stores, so parsing it as f32 is exact) and ``zero_point``.
- conv / fully connected: ``weights`` flat int8 in TFLite's own layout, which is
  fitnets' layout too (CONV_2D filters are OHWI, FULLY_CONNECTED weights OI; checked
  below against the Keras kernels), ``bias`` int32, ``weight_scales`` one float32
  per output channel (a per-tensor scale is repeated), ``activation``.
  The requantization multipliers are *not* exported: the Rust test derives them with
  ``fitnets_shared::quant::quantize_multiplier`` from ``in_scale * w_scale / out_scale``
  in double precision, as TFLite's Prepare does.
- conv / pools: ``window`` = kernel, stride and TFLite's padding *type*; the test
  computes explicit pads with ``Window::same`` and checks the output shape.
- ``inputs`` / ``outputs``: flat int8 NHWC values, one list per sample.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert import schema_py_generated as schema  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

EXPECTED_VERSIONS = {"tensorflow": "2.21.0", "ai_edge_litert": "2.3.0"}

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "tflite_goldens.json")

# Representative data: an asymmetric float range, so the input zero point is not 0.
REP_LOW, REP_HIGH = -0.7, 1.3
REP_SAMPLES = 64

OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
PADDING = {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"}
ACTIVATION = {schema.ActivationFunctionType.NONE: "NONE", schema.ActivationFunctionType.RELU: "RELU"}


def check_versions():
    from importlib.metadata import version

    found = {"tensorflow": tf.__version__, "ai_edge_litert": version("ai-edge-litert")}
    if found != EXPECTED_VERSIONS:
        sys.exit(f"expected {EXPECTED_VERSIONS}, found {found}: install the pinned versions")


def convert(model, input_shape, seed):
    """Full-integer int8 post-training quantization with random representative data."""
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(REP_SAMPLES):
            yield [rng.uniform(REP_LOW, REP_HIGH, (1, *input_shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def f32(x):
    """A float32 as the Python float of the same value (json prints it round-trippably)."""
    return float(np.float32(x))


class Converted:
    """A converted model: its flatbuffer operators and a reference-kernel interpreter."""

    def __init__(self, blob):
        self.blob = blob
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))
        assert len(model.subgraphs) == 1
        self.graph = model.subgraphs[0]
        self.op_names = [OPS[model.operatorCodes[op.opcodeIndex].builtinCode] for op in self.graph.operators]
        self.interp = Interpreter(
            model_content=blob,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True,
        )
        self.interp.allocate_tensors()
        self.details = {t["index"]: t for t in self.interp.get_tensor_details()}

    def op(self, i):
        return self.graph.operators[i]

    def quant(self, index):
        """(scales, zero_points, quantized_dimension) of a tensor."""
        q = self.details[index]["quantization_parameters"]
        return list(q["scales"]), list(q["zero_points"]), int(q["quantized_dimension"])

    def tensor_quant(self, index):
        """The per-tensor quantization of an activation tensor, with its NHWC shape."""
        scales, zps, _ = self.quant(index)
        assert len(scales) == 1 and len(zps) == 1, (index, scales, zps)
        assert self.details[index]["dtype"] == np.int8
        shape = [int(d) for d in self.details[index]["shape"]]
        assert shape[0] == 1, shape
        shape = shape[1:]
        if len(shape) == 1:
            shape = [1, 1, *shape]
        assert len(shape) == 3, shape
        return {"shape": shape, "scale": f32(scales[0]), "zero_point": int(zps[0])}

    def constant(self, index):
        return self.interp.get_tensor(index)

    def run(self, x, resolver=None):
        interp = self.interp
        if resolver is not None:
            interp = Interpreter(model_content=self.blob, experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
        inp = interp.get_input_details()
        out = interp.get_output_details()
        assert len(inp) == 1 and len(out) == 1
        interp.set_tensor(inp[0]["index"], x.reshape(inp[0]["shape"]))
        interp.invoke()
        return interp.get_tensor(out[0]["index"]).copy()


def affine_params(conv, op, keras_kernel, keras_bias, layout):
    """Weights, bias and per-channel scales of a CONV_2D / FULLY_CONNECTED operator."""
    _, w_index, b_index = (int(i) for i in op.inputs)
    weights = conv.constant(w_index)
    bias = conv.constant(b_index)
    assert weights.dtype == np.int8 and bias.dtype == np.int32
    outputs = weights.shape[0]
    w_scales, w_zps, w_dim = conv.quant(w_index)
    assert all(z == 0 for z in w_zps), "weights must be symmetric"
    assert weights.min() >= -127, "weights must be in [-127, 127]"
    per_channel = len(w_scales) > 1
    if per_channel:
        assert w_dim == 0 and len(w_scales) == outputs, (w_dim, len(w_scales))
    else:
        w_scales = w_scales * outputs
    # Layout check: TFLite's OHWI / OI against Keras' HWIO / IO kernel.
    if layout == "OHWI":
        expected = np.transpose(keras_kernel, (3, 0, 1, 2))
    else:
        expected = np.transpose(keras_kernel, (1, 0))
    assert weights.shape == expected.shape, (weights.shape, expected.shape)
    scale = np.array(w_scales, dtype=np.float64).reshape((outputs,) + (1,) * (weights.ndim - 1))
    err = np.abs(weights * scale - expected)
    assert np.all(err <= scale * 0.5 + 1e-7), f"{layout} weights do not match the Keras kernel"
    b_scales, _, _ = conv.quant(b_index)
    b_scales = np.array(b_scales if len(b_scales) > 1 else b_scales * outputs, dtype=np.float64)
    assert np.all(np.abs(bias * b_scales - keras_bias) <= b_scales * 0.5 + 1e-7), "bias does not match"
    # TFLite's bias scale is in_scale * w_scale[c].
    in_scale = conv.quant(int(op.inputs[0]))[0][0]
    assert np.allclose(b_scales, in_scale * np.array(w_scales, dtype=np.float64), rtol=1e-6)
    return {
        "weights_shape": [int(d) for d in weights.shape],
        "weights": [int(v) for v in weights.reshape(-1)],
        "bias": [int(v) for v in bias],
        "weight_scales": [f32(s) for s in w_scales],
        "per_channel": per_channel,
    }


def window_params(op, kernel):
    o = op.builtinOptions
    assert getattr(o, "dilationHFactor", 1) == 1 and getattr(o, "dilationWFactor", 1) == 1
    if hasattr(o, "filterHeight"):
        kernel = (o.filterHeight, o.filterWidth)
    return {"kernel": list(kernel), "stride": [o.strideH, o.strideW], "padding": PADDING[o.padding]}


def random_inputs(shape, count, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# Cases: each has a name, a kind (the fitnets operator it checks), the input shape
# without the batch, a builder returning (Keras model, {role: Keras layer}) and the
# number of random int8 inputs to export.


def conv_case(name, input_shape, filters, kernel, strides, padding, activation=None, pieces=None, samples=4):
    return {
        "name": name,
        "kind": "conv2d_maxout" if pieces else "conv2d",
        "input_shape": input_shape,
        "build": lambda: build_conv(input_shape, filters, kernel, strides, padding, activation, pieces),
        "samples": samples,
    }


def build_conv(input_shape, filters, kernel, strides, padding, activation, pieces):
    inp = keras.Input(input_shape)
    layer = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        activation=activation,
        kernel_initializer="glorot_uniform",
        bias_initializer=keras.initializers.RandomNormal(stddev=0.3),
    )
    x = layer(inp)
    if pieces:
        # Unit-major maxout: the pieces of unit g are channels g*k .. g*k+k-1, so piece p
        # of every unit is x[..., p::k].
        y = x[..., 0::pieces]
        for p in range(1, pieces):
            y = keras.ops.maximum(y, x[..., p::pieces])
        x = y
    return keras.Model(inp, x), {"conv": layer}


def pool_case(name, kind, input_shape, pool, strides, padding, samples=6):
    def build():
        inp = keras.Input(input_shape)
        cls = keras.layers.MaxPooling2D if kind == "max_pool2d" else keras.layers.AveragePooling2D
        return keras.Model(inp, cls(pool, strides=strides, padding=padding)(inp)), {}

    return {"name": name, "kind": kind, "input_shape": input_shape, "build": build, "samples": samples}


def mean_case(name, input_shape, samples=32):
    def build():
        inp = keras.Input(input_shape)
        return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp)), {}

    return {"name": name, "kind": "mean", "input_shape": input_shape, "build": build, "samples": samples}


def dense_case(name, features, units, activation=None, samples=48):
    def build():
        inp = keras.Input((features,))
        layer = keras.layers.Dense(
            units, activation=activation, bias_initializer=keras.initializers.RandomNormal(stddev=0.3)
        )
        return keras.Model(inp, layer(inp)), {"dense": layer}

    return {"name": name, "kind": "fully_connected", "input_shape": (features,), "build": build, "samples": samples}


CASES = [
    conv_case("conv3x3_same_s1", (9, 9, 3), 8, 3, 1, "same"),
    conv_case("conv3x3_same_s1_relu", (9, 9, 3), 8, 3, 1, "same", activation="relu"),
    conv_case("conv3x3_valid_s2", (9, 9, 3), 8, 3, 2, "valid"),
    conv_case("conv5x5_same_s2_even", (8, 8, 3), 8, 5, 2, "same"),
    conv_case("conv1x1", (9, 9, 3), 8, 1, 1, "valid"),
    conv_case("conv3x3_same_maxout2", (9, 9, 3), 8, 3, 1, "same", pieces=2),
    pool_case("max_pool2x2_s2_valid", "max_pool2d", (9, 9, 4), 2, 2, "valid"),
    pool_case("max_pool3x3_s2_same", "max_pool2d", (9, 9, 4), 3, 2, "same"),
    pool_case("max_pool3x3_s2_same_even", "max_pool2d", (8, 8, 4), 3, 2, "same"),
    pool_case("avg_pool2x2_s2_valid", "avg_pool2d", (9, 9, 4), 2, 2, "valid"),
    pool_case("avg_pool3x3_s1_same", "avg_pool2d", (9, 9, 4), 3, 1, "same"),
    mean_case("global_avg_pool", (9, 9, 4)),
    dense_case("dense", 32, 10),
    dense_case("dense_relu", 32, 10, activation="relu"),
]

EXPECTED_OPS = {
    "conv2d": ["CONV_2D"],
    "conv2d_maxout": ["CONV_2D", "STRIDED_SLICE", "STRIDED_SLICE", "MAXIMUM"],
    "max_pool2d": ["MAX_POOL_2D"],
    "avg_pool2d": ["AVERAGE_POOL_2D"],
    "mean": ["MEAN"],
    "fully_connected": ["FULLY_CONNECTED"],
}


def check_maxout(conv, pieces, out_tensor):
    """The slices are x[..., p::pieces] and every tensor keeps the conv's quantization."""
    ops = [conv.op(i) for i in range(1, 1 + pieces)]
    conv_out = int(conv.op(0).outputs[0])
    q = conv.tensor_quant(conv_out)
    for p, op in enumerate(ops):
        src, begin, end, strides = (int(i) for i in op.inputs)
        assert src == conv_out
        b, s = conv.constant(begin), conv.constant(strides)
        assert list(b) == [0, 0, 0, p] and list(s) == [1, 1, 1, pieces], (b, s)
        assert {k: v for k, v in conv.tensor_quant(int(op.outputs[0])).items() if k != "shape"} == {
            k: v for k, v in q.items() if k != "shape"
        }
    assert conv.tensor_quant(out_tensor)["scale"] == q["scale"]
    assert conv.tensor_quant(out_tensor)["zero_point"] == q["zero_point"]
    return conv_out


def make_case(index, case):
    keras.utils.set_random_seed(1000 + index)
    model, layers = case["build"]()
    blob = convert(model, case["input_shape"], seed=2000 + index)
    conv = Converted(blob)
    kind = case["kind"]
    assert conv.op_names == EXPECTED_OPS[kind], (case["name"], conv.op_names)

    first = conv.op(0)
    in_index = int(first.inputs[0])
    out_index = int(conv.op(len(conv.op_names) - 1).outputs[0])
    assert in_index == conv.interp.get_input_details()[0]["index"]
    assert out_index == conv.interp.get_output_details()[0]["index"]
    record = {
        "name": case["name"],
        "kind": kind,
        "tflite_ops": conv.op_names,
        "input": conv.tensor_quant(in_index),
        "output": conv.tensor_quant(out_index),
    }

    if kind in ("conv2d", "conv2d_maxout"):
        layer = layers["conv"]
        kernel, bias = (np.array(v) for v in layer.get_weights())
        record["window"] = window_params(first, layer.kernel_size)
        record["activation"] = ACTIVATION[first.builtinOptions.fusedActivationFunction]
        record.update(affine_params(conv, first, kernel, bias, "OHWI"))
        if kind == "conv2d_maxout":
            record["pieces"] = int(len(conv.op_names) - 2)
            record["conv_output"] = conv.tensor_quant(check_maxout(conv, record["pieces"], out_index))
    elif kind in ("max_pool2d", "avg_pool2d"):
        record["window"] = window_params(first, None)
        assert first.builtinOptions.fusedActivationFunction == schema.ActivationFunctionType.NONE
        same = ("scale", "zero_point")
        assert all(record["input"][k] == record["output"][k] for k in same), "pool must keep its quantization"
    elif kind == "mean":
        axes = conv.constant(int(first.inputs[1]))
        assert sorted(int(a) for a in axes) == [1, 2], axes
    elif kind == "fully_connected":
        layer = layers["dense"]
        kernel, bias = (np.array(v) for v in layer.get_weights())
        opts = first.builtinOptions
        assert opts.weightsFormat == schema.FullyConnectedOptionsWeightsFormat.DEFAULT
        record["activation"] = ACTIVATION[opts.fusedActivationFunction]
        record.update(affine_params(conv, first, kernel, bias, "OI"))

    inputs = random_inputs(record["input"]["shape"], case["samples"], seed=3000 + index)
    outputs, optimized_diffs = [], 0
    for x in inputs:
        y = conv.run(x)
        assert y.dtype == np.int8
        if kind == "conv2d_maxout":
            # The maxout really is the elementwise max over the pieces of the conv output.
            pieces = record["pieces"]
            conv_y = conv.interp.get_tensor(int(conv.op(0).outputs[0]))
            assert np.array_equal(y, conv_y.reshape(*conv_y.shape[:-1], -1, pieces).max(axis=-1))
        outputs.append(y)
        optimized_diffs += int(np.sum(conv.run(x, OpResolverType.BUILTIN) != y))
    assert list(outputs[0].shape[1:]) == record["output"]["shape"][-outputs[0].ndim + 1 :]
    record["inputs"] = [[int(v) for v in x.reshape(-1)] for x in inputs]
    record["outputs"] = [[int(v) for v in y.reshape(-1)] for y in outputs]
    total = sum(y.size for y in outputs)
    print(
        f"{case['name']:28} {'+'.join(conv.op_names):40} {total:5} outputs"
        f"  (optimized kernels differ on {optimized_diffs})"
        + (f"  per_channel={record['per_channel']}" if "per_channel" in record else ""),
        file=sys.stderr,
    )
    return record


def main():
    check_versions()
    records = [make_case(i, case) for i, case in enumerate(CASES)]
    meta = {
        "generator": "bench/tflite/make_goldens.py",
        "tensorflow": EXPECTED_VERSIONS["tensorflow"],
        "ai_edge_litert": EXPECTED_VERSIONS["ai_edge_litert"],
        "resolver": "BUILTIN_REF",
    }
    lines = ["{", f'"meta":{json.dumps(meta, separators=(",", ":"))},', '"cases":[']
    lines.append(",\n".join(json.dumps(r, separators=(",", ":")) for r in records))
    lines.append("]}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.relpath(OUT, REPO)} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
