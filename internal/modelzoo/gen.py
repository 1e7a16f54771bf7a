#!/usr/bin/env python3
"""Generate the small ONNX models in internal/modelzoo.

Run from the repository root:

    python3 internal/modelzoo/gen.py

Requires Python 3 with:

    pip install onnx scikit-learn skl2onnx

and, for the smoke test run after generation, onnxruntime
(pip install onnxruntime); without it the models are still written and the
check is skipped with a warning.

The generated files are committed next to this script so that Go tests never
need Python. Everything is deterministic (fixed weights, fixed seeds, no
timestamps or random names): running the script twice gives byte-identical
files, which can be checked with `sha256sum internal/modelzoo/*.onnx`.

All models use ai.onnx opset 17 (plus ai.onnx.ml opset 3 where needed) and
IR version 9, so ONNX Runtime 1.24 loads them. The batch dimension is the
symbolic dim "batch" (ONNX Runtime reports it as -1), except in
fixed_shape.onnx.
"""

import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))

OPSET = 17
ML_OPSET = 3
IR_VERSION = 9
PRODUCER = "mlgate-modelzoo-gen"
MAX_SIZE = 50 * 1024


def out_path(name):
    return os.path.join(HERE, name)


def make_model(graph, ml=False):
    opsets = [helper.make_opsetid("", OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER)
    model.ir_version = IR_VERSION
    return model


def save(model, name):
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    write_bytes(name, data)
    return data


def write_bytes(name, data):
    if len(data) >= MAX_SIZE:
        sys.exit(f"{name}: {len(data)} bytes, limit is {MAX_SIZE}")
    with open(out_path(name), "wb") as f:
        f.write(data)
    print(f"wrote {name} ({len(data)} bytes)")


def vi(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


# ---------------------------------------------------------------------------
# 1 + 2: linear.onnx and linear_v2.onnx, y = x·W + b.
# The weights are exactly representable in float32 so tests can compute the
# expected output by hand.

LINEAR_W = np.array(
    [[1.0, -1.0],
     [2.0, 0.5],
     [-0.5, 1.0],
     [0.0, 2.0]], dtype=np.float32)
LINEAR_B = np.array([0.5, -1.0], dtype=np.float32)

LINEAR_V2_W = np.array(
    [[-1.0, 1.0],
     [0.5, 2.0],
     [1.0, -0.5],
     [2.0, 0.0]], dtype=np.float32)
LINEAR_V2_B = np.array([10.0, 20.0], dtype=np.float32)


def linear(name, graph_name, w, b):
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
            helper.make_node("Add", ["xw", "B"], ["y"], name="add"),
        ],
        graph_name,
        [vi("x", TensorProto.FLOAT, ["batch", 4])],
        [vi("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(b, "B"),
        ],
    )
    return save(make_model(graph), name)


# ---------------------------------------------------------------------------
# 3: multi_input.onnx

def multi_input():
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["a", "axes"], ["a_sum"], keepdims=1, name="sum_a"),
            helper.make_node("ReduceSum", ["b", "axes"], ["b_sum"], keepdims=1, name="sum_b"),
            helper.make_node("Cast", ["b_sum"], ["b_sum_f"], to=TensorProto.FLOAT, name="cast_b"),
            helper.make_node("Add", ["a_sum", "b_sum_f"], ["sum"], name="add"),
            helper.make_node("Mul", ["b", "two"], ["b_doubled"], name="double_b"),
        ],
        "multi_input",
        [
            vi("a", TensorProto.FLOAT, ["batch", 3]),
            vi("b", TensorProto.INT64, ["batch", 2]),
        ],
        [
            vi("sum", TensorProto.FLOAT, ["batch", 1]),
            vi("b_doubled", TensorProto.INT64, ["batch", 2]),
        ],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array(2, dtype=np.int64), "two"),
        ],
    )
    return save(make_model(graph), "multi_input.onnx")


# ---------------------------------------------------------------------------
# 4: iris.onnx, scikit-learn LogisticRegression converted with default options
# (so the probabilities come out through a ZipMap as seq(map(int64, float))).

def iris():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    x = data.data.astype(np.float32)
    y = data.target
    clf = LogisticRegression(max_iter=500, random_state=0)
    clf.fit(x, y)

    model = convert_sklearn(
        clf,
        name="iris_logistic_regression",  # default is a random uuid
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
    )
    # Name the unknown batch dimension like the other models do.
    for value in list(model.graph.input) + list(model.graph.output):
        t = value.type
        if t.HasField("tensor_type") and t.tensor_type.HasField("shape"):
            dim = t.tensor_type.shape.dim[0]
            if not dim.HasField("dim_value"):
                dim.dim_param = "batch"
    # skl2onnx lowers the opsets to the minimum its operators need (ai.onnx 9,
    # ai.onnx.ml 1) and writes the imports in set order, which varies between
    # runs. Pin them to the zoo's opsets in a fixed order; the operators used
    # (LinearClassifier, Normalizer, ZipMap, Cast) mean the same there.
    ops = sorted({(n.domain, n.op_type) for n in model.graph.node})
    assert ops == [("", "Cast"), ("ai.onnx.ml", "LinearClassifier"),
                   ("ai.onnx.ml", "Normalizer"), ("ai.onnx.ml", "ZipMap")], ops
    del model.opset_import[:]
    model.opset_import.extend([
        helper.make_opsetid("", OPSET),
        helper.make_opsetid("ai.onnx.ml", ML_OPSET),
    ])
    model.ir_version = IR_VERSION
    model.doc_string = "scikit-learn LogisticRegression(max_iter=500) trained on the iris dataset"
    data = save(model, "iris.onnx")
    IRIS_EXPECTED["proba"] = clf.predict_proba(smoke_inputs("iris.onnx")["float_input"])
    return data


IRIS_EXPECTED = {}


# ---------------------------------------------------------------------------
# 5: strings.onnx

def strings():
    graph = helper.make_graph(
        [
            helper.make_node(
                "LabelEncoder", ["text"], ["code"], domain="ai.onnx.ml", name="encode",
                keys_strings=["cat", "dog", "bird"],
                values_int64s=[1, 2, 3],
                default_int64=-1,
            ),
            helper.make_node("Identity", ["text"], ["echo"], name="echo"),
        ],
        "strings",
        [vi("text", TensorProto.STRING, ["batch", 1])],
        [
            vi("code", TensorProto.INT64, ["batch", 1]),
            vi("echo", TensorProto.STRING, ["batch", 1]),
        ],
    )
    return save(make_model(graph, ml=True), "strings.onnx")


# ---------------------------------------------------------------------------
# 6: all_types.onnx

ALL_TYPES = [
    ("b", TensorProto.BOOL),
    ("i8", TensorProto.INT8),
    ("i16", TensorProto.INT16),
    ("i32", TensorProto.INT32),
    ("i64", TensorProto.INT64),
    ("u8", TensorProto.UINT8),
    ("u16", TensorProto.UINT16),
    ("u32", TensorProto.UINT32),
    ("u64", TensorProto.UINT64),
    ("f32", TensorProto.FLOAT),
    ("f64", TensorProto.DOUBLE),
    ("s", TensorProto.STRING),
]


def all_types():
    graph = helper.make_graph(
        [helper.make_node("Identity", [n], [n + "_out"], name="id_" + n) for n, _ in ALL_TYPES],
        "all_types",
        [vi(n, t, ["batch", 2]) for n, t in ALL_TYPES],
        [vi(n + "_out", t, ["batch", 2]) for n, t in ALL_TYPES],
    )
    return save(make_model(graph), "all_types.onnx")


# ---------------------------------------------------------------------------
# 7: fixed_shape.onnx

def fixed_shape():
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"], name="double")],
        "fixed_shape",
        [vi("x", TensorProto.FLOAT, [2, 3])],
        [vi("y", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")],
    )
    return save(make_model(graph), "fixed_shape.onnx")


# ---------------------------------------------------------------------------
# 8: garbage.onnx and truncated.onnx (not models; for upload refusal tests)

def garbage():
    # SHA-256 in counter mode: stable across Python versions, unlike random.
    out = bytearray()
    counter = 0
    while len(out) < 2048:
        out += hashlib.sha256(b"mlgate-modelzoo-garbage-%d" % counter).digest()
        counter += 1
    data = bytes(out[:2048])
    write_bytes("garbage.onnx", data)
    return data


def truncated(linear_bytes):
    data = linear_bytes[: len(linear_bytes) // 2]
    write_bytes("truncated.onnx", data)
    return data


# ---------------------------------------------------------------------------
# dense10.onnx, dense50.onnx: x FP32 [batch, n] -> y FP32 [batch, 1], a
# weighted sum; the feature-lookup benchmarks feed them from 10 and 50
# features.

def dense(n):
    w = (np.arange(n, dtype=np.float32).reshape(n, 1) % 7 - 3) / 8
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")],
        f"dense{n}",
        [vi("x", TensorProto.FLOAT, ["batch", n])],
        [vi("y", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    return save(make_model(graph), f"dense{n}.onnx")


# ---------------------------------------------------------------------------
# fragile.onnx: x FP32 [batch, 4] -> y FP32 [batch, 2], a row of a 3-row table
# picked by the row's largest value. It loads and runs on zeros (the warm-up)
# but fails on any row whose largest value is 3 or more: a model that breaks
# only on real requests, for canary and shadow tests.

def fragile():
    table = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["x"], ["m"], name="max", axes=[1], keepdims=0),
            helper.make_node("Cast", ["m"], ["idx"], name="cast", to=TensorProto.INT64),
            helper.make_node("Gather", ["T", "idx"], ["y"], name="gather", axis=0),
        ],
        "fragile",
        [vi("x", TensorProto.FLOAT, ["batch", 4])],
        [vi("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(table, "T")],
    )
    return save(make_model(graph), "fragile.onnx")


# ---------------------------------------------------------------------------
# faulty.onnx: x FP32 [batch, 4] -> y FP32 [batch, 2], x's first two columns.
# Like fragile.onnx it loads and runs on zeros but fails on a batch holding a
# value of 3 or more, here by a fault of the graph's own: it then reshapes the
# [batch, 2] columns to [batch, 3], which ONNX Runtime refuses. Where fragile's
# failure is an index out of range (the input's fault), this one is the
# model's, for tests that tell the two apart.

def faulty():
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["x"], ["m"], name="max", keepdims=0),
            helper.make_node("GreaterOrEqual", ["m", "three"], ["big"], name="big"),
            helper.make_node("Where", ["big", "wide", "narrow"], ["width"], name="width"),
            helper.make_node("Shape", ["x"], ["batch"], name="batch", start=0, end=1),
            helper.make_node("Concat", ["batch", "width"], ["shape"], name="shape", axis=0),
            helper.make_node("Slice", ["x", "zero", "two", "one"], ["cols"], name="cols"),
            helper.make_node("Reshape", ["cols", "shape"], ["y"], name="reshape"),
        ],
        "faulty",
        [vi("x", TensorProto.FLOAT, ["batch", 4])],
        [vi("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            numpy_helper.from_array(np.array(3, dtype=np.float32), "three"),
            numpy_helper.from_array(np.array([3], dtype=np.int64), "wide"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "narrow"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "two"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        ],
    )
    return save(make_model(graph), "faulty.onnx")


# ---------------------------------------------------------------------------
# mlp_heavy.onnx: x FP32 [batch, 256] -> y FP32 [batch, 8] through three
# 2048-wide dense layers with Relu, about 8.9 million multiply-adds a row: a
# model whose run time dominates a request's, for the dynamic-batching
# benchmarks. Its 36 MB of weights are more than a CPU's cache holds, so a
# run of one row waits on memory, as large models do, and a run of many rows
# reads them once for all. They would make a 36 MB file, so the graph
# computes them from their index instead (a sine hash, the same on every
# run): the file stays a few KiB, and ONNX Runtime folds the computation into
# constants when it loads the session, so a run multiplies as if they were
# stored.

MLP_HEAVY_WIDTHS = [256, 2048, 2048, 2048, 8]


def mlp_heavy():
    nodes, inits = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def weights(k, rows, cols):
        # w[i,j] = (frac(sin(n*12.9898 + k) * 43758.5453) - 0.5) * sqrt(6/rows)
        # with n = i*cols + j: a deterministic pseudo-random uniform matrix
        # scaled as He initialisation would, so activations keep their size.
        p = f"w{k}_"
        nodes.extend([
            helper.make_node("Range", [const(p + "start", 0.0), const(p + "limit", float(rows * cols)),
                                       const(p + "delta", 1.0)], [p + "n"], name=p + "range"),
            helper.make_node("Reshape", [p + "n", const(p + "shape", [rows, cols], np.int64)], [p + "grid"],
                             name=p + "reshape"),
            helper.make_node("Mul", [p + "grid", const(p + "freq", 12.9898)], [p + "arg0"], name=p + "freq"),
            helper.make_node("Add", [p + "arg0", const(p + "phase", float(k))], [p + "arg"], name=p + "phase"),
            helper.make_node("Sin", [p + "arg"], [p + "sin"], name=p + "sin"),
            helper.make_node("Mul", [p + "sin", const(p + "amp", 43758.5453)], [p + "h"], name=p + "amp"),
            helper.make_node("Floor", [p + "h"], [p + "hfloor"], name=p + "floor"),
            helper.make_node("Sub", [p + "h", p + "hfloor"], [p + "frac"], name=p + "frac"),
            helper.make_node("Sub", [p + "frac", const(p + "half", 0.5)], [p + "centred"], name=p + "centre"),
            helper.make_node("Mul", [p + "centred", const(p + "scale", float(np.sqrt(6.0 / rows)))], [p + "W"],
                             name=p + "scale"),
        ])
        return p + "W"

    h = "x"
    layers = len(MLP_HEAVY_WIDTHS) - 1
    for k in range(layers):
        rows, cols = MLP_HEAVY_WIDTHS[k], MLP_HEAVY_WIDTHS[k + 1]
        w = weights(k, rows, cols)
        b = const(f"b{k}", (np.arange(cols, dtype=np.float32) % 5 - 2) / 100)
        out = "y" if k == layers - 1 else f"h{k}"
        nodes.append(helper.make_node("MatMul", [h, w], [f"mm{k}"], name=f"matmul{k}"))
        if k == layers - 1:
            nodes.append(helper.make_node("Add", [f"mm{k}", b], [out], name=f"bias{k}"))
        else:
            nodes.append(helper.make_node("Add", [f"mm{k}", b], [f"pre{k}"], name=f"bias{k}"))
            nodes.append(helper.make_node("Relu", [f"pre{k}"], [out], name=f"relu{k}"))
        h = out
    graph = helper.make_graph(
        nodes,
        "mlp_heavy",
        [vi("x", TensorProto.FLOAT, ["batch", MLP_HEAVY_WIDTHS[0]])],
        [vi("y", TensorProto.FLOAT, ["batch", MLP_HEAVY_WIDTHS[-1]])],
        initializer=inits,
    )
    return save(make_model(graph), "mlp_heavy.onnx")


# ---------------------------------------------------------------------------
# Smoke test with onnxruntime.

def smoke_inputs(name):
    rng = np.random.RandomState(0)
    n = 3
    if name in ("linear.onnx", "linear_v2.onnx"):
        return {"x": np.arange(n * 4, dtype=np.float32).reshape(n, 4)}
    if name == "multi_input.onnx":
        return {
            "a": np.arange(n * 3, dtype=np.float32).reshape(n, 3),
            "b": np.arange(n * 2, dtype=np.int64).reshape(n, 2),
        }
    if name == "iris.onnx":
        return {"float_input": np.array(
            [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.9, 3.1, 5.4, 2.1]],
            dtype=np.float32)}
    if name == "strings.onnx":
        return {"text": np.array([["cat"], ["bird"], ["fish"]], dtype=object)}
    if name == "all_types.onnx":
        feeds = {}
        for inp, t in ALL_TYPES:
            if t == TensorProto.STRING:
                feeds[inp] = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)
            else:
                dtype = helper.tensor_dtype_to_np_dtype(t)
                feeds[inp] = (rng.randint(0, 100, size=(n, 2)) % 2 == 0).astype(dtype) \
                    if t == TensorProto.BOOL else rng.randint(0, 100, size=(n, 2)).astype(dtype)
        return feeds
    if name == "fixed_shape.onnx":
        return {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    if name in ("fragile.onnx", "faulty.onnx"):
        return {"x": np.array([[0, 1, 2, 1], [0, 0, 0, 0], [2, 2, 0, 1]], dtype=np.float32)}
    if name == "mlp_heavy.onnx":
        return {"x": (np.arange(n * 256, dtype=np.float32).reshape(n, 256) % 11 - 5) / 5}
    if name in ("dense10.onnx", "dense50.onnx"):
        k = 10 if name == "dense10.onnx" else 50
        return {"x": np.ones((n, k), dtype=np.float32)}
    raise KeyError(name)


def check(models):
    try:
        import onnxruntime as ort
    except ImportError:
        print("warning: onnxruntime not installed, skipping the smoke test")
        return
    print(f"\nsmoke test with onnxruntime {ort.__version__}")
    for name in models:
        sess = ort.InferenceSession(out_path(name), providers=["CPUExecutionProvider"])
        print(f"\n{name}")
        for i in sess.get_inputs():
            print(f"  in  {i.name}: {i.type} {i.shape}")
        for o in sess.get_outputs():
            print(f"  out {o.name}: {o.type} {o.shape}")
        feeds = smoke_inputs(name)
        results = sess.run(None, feeds)
        for o, r in zip(sess.get_outputs(), results):
            if isinstance(r, np.ndarray):
                print(f"  {o.name} = {r.tolist()}")
            else:
                print(f"  {o.name} = {r}")
        if name == "iris.onnx":
            got = np.array([[row[k] for k in range(3)] for row in results[1]])
            assert np.allclose(got, IRIS_EXPECTED["proba"], atol=1e-5), (got, IRIS_EXPECTED)
            assert results[0].tolist() == IRIS_EXPECTED["proba"].argmax(axis=1).tolist()
        if name == "all_types.onnx":
            for (inp, _), r in zip(ALL_TYPES, results):
                assert np.array_equal(feeds[inp], r), inp
    for name in ("garbage.onnx", "truncated.onnx"):
        try:
            ort.InferenceSession(out_path(name), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any refusal is what we want
            print(f"\n{name}: refused as expected ({type(e).__name__})")
        else:
            sys.exit(f"{name}: onnxruntime unexpectedly loaded it")


def main():
    lin = linear("linear.onnx", "linear", LINEAR_W, LINEAR_B)
    linear("linear_v2.onnx", "linear_v2", LINEAR_V2_W, LINEAR_V2_B)
    multi_input()
    iris()
    strings()
    all_types()
    fixed_shape()
    dense(10)
    dense(50)
    fragile()
    faulty()
    mlp_heavy()
    garbage()
    truncated(lin)
    check([
        "linear.onnx", "linear_v2.onnx", "multi_input.onnx", "iris.onnx",
        "strings.onnx", "all_types.onnx", "fixed_shape.onnx",
        "dense10.onnx", "dense50.onnx", "fragile.onnx", "faulty.onnx",
        "mlp_heavy.onnx",
    ])


if __name__ == "__main__":
    main()
