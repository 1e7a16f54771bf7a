"""What the gateway of TestStockClients serves and should answer, shared by
the scripts beside this file. It imports no client: tritonclient.grpc and
kserve cannot be imported in one process, so each script imports one.

The models (internal/modelzoo, see modelzoo.go):
  linear      x FP32 [batch,4] -> y FP32 [batch,2]; version 1 is
              linear.onnx, version 2 linear_v2.onnx
  multi_input a FP32 [batch,3], b INT64 [batch,2] -> sum FP32 [batch,1],
              b_doubled INT64 [batch,2]
  strings     text BYTES [batch,1] -> code INT64 [batch,1], echo BYTES
  iris        float_input FP32 [batch,4] -> output_label INT64 [batch],
              output_probability, a ZipMap (datatype JSON, one
              {"class": probability} object per row)
and the endpoint scorer, whose variants v1 and v2 route to linear/1 and
linear/2; X-Mlgate-Variant (gRPC metadata x-mlgate-variant) pins one.
"""
import numpy as np

MODELS = ("linear", "multi_input", "strings", "iris")
ENDPOINT = "scorer"
VARIANTS = {"v1": "1", "v2": "2"}  # variant -> linear's version
VARIANT_HEADER = "X-Mlgate-Variant"

_W = {
    "1": (np.array([[1, -1], [2, 0.5], [-0.5, 1], [0, 2]], dtype=np.float32), np.array([0.5, -1], dtype=np.float32)),
    "2": (np.array([[-1, 1], [0.5, 2], [1, -0.5], [2, 0]], dtype=np.float32), np.array([10, 20], dtype=np.float32)),
}

X = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
A = np.array([[1, 2, 3], [0.5, -1, 4]], dtype=np.float32)
B = np.array([[4, 5], [-7, 1 << 40]], dtype=np.int64)  # beyond int32 and float32's exact range
TEXT = np.array([["cat"], ["dog"], ["fish"]], dtype=np.object_)
CODES = np.array([[1], [2], [-1]], dtype=np.int64)
# One iris of each class: setosa (0), versicolor (1), virginica (2).
FLOWERS = np.array([[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
LABELS = np.array([0, 1, 2], dtype=np.int64)


def linear(x, version="2"):
    """linear's output for x; version 2 is the latest, served by "linear"."""
    w, b = _W[version]
    return x @ w + b


def check_linear(y, x=X, version="2"):
    want = linear(x, version)
    assert y is not None and y.shape == want.shape and np.allclose(y, want, rtol=1e-6), (y, want)


def check_multi_input(total, doubled):
    want_sum = A.sum(axis=1, keepdims=True) + B.sum(axis=1, keepdims=True).astype(np.float32)
    assert doubled.dtype == np.int64 and np.array_equal(doubled, B * 2), doubled
    assert total.shape == (2, 1) and np.allclose(total, want_sum, rtol=1e-6), (total, want_sum)


def text(values):
    """values (bytes or str) as a list of str."""
    return [v.decode() if isinstance(v, bytes) else v for v in np.asarray(values).reshape(-1)]


def check_strings(code, echo):
    assert code.dtype == np.int64 and np.array_equal(code.reshape(3, 1), CODES), code
    assert text(echo) == ["cat", "dog", "fish"] and np.asarray(echo).shape == (3, 1), echo


def check_labels(labels):
    assert np.array_equal(np.asarray(labels).reshape(-1), LABELS), labels


def check_zipmap(maps):
    """maps: one {class: probability} per flower, classes as the JSON keys
    "0", "1", "2"; the most probable class is the flower's label."""
    maps = list(maps)
    assert len(maps) == len(LABELS), maps
    for m, label in zip(maps, LABELS):
        assert isinstance(m, dict) and sorted(m) == ["0", "1", "2"], m
        assert abs(sum(m.values()) - 1) < 1e-4, m
        assert max(m, key=m.get) == str(label), (m, label)


def check_message(message, *parts):
    for part in parts:
        assert part in message, "%r lacks %r" % (message, part)


def check_wrong_input(message):
    """The gateway's message for x of shape [1,3] sent to linear: it names
    the input, the shape sent and the model's."""
    check_message(message, 'input "x"', "shape [1,3]", "[-1,4]")


def check_wrong_datatype(message):
    """The gateway's message for x sent to linear as INT64."""
    check_message(message, 'input "x"', "datatype INT64", "FP32")


def check_unknown_variant(message):
    """The gateway's message for the variant v3 of scorer, which has none:
    it names the variant and those there are."""
    check_message(message, 'variant "v3"', 'no such variant', "v1, v2")


def check_no_key(message):
    check_message(message, "missing API key")

def maps(elements):
    """The maps of a ZipMap output answered over gRPC, where each is the
    JSON text of an element of a BYTES tensor."""
    import json

    return [json.loads(e) for e in np.asarray(elements).reshape(-1)]
