"""tritonclient's HTTP client, unmodified, against a running mlgate.

Usage: triton_http.py HOST:PORT API_KEY
Each check raises on a wrong answer; the script prints "ok <check>" for each
one that passes, and exits non-zero on the first that does not.
"""
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, key = sys.argv[1], sys.argv[2]
client = httpclient.InferenceServerClient(url=url)


class Headers(dict):
    """The key, as a fresh dict each time it is passed: tritonclient adds
    Inference-Header-Content-Length to the headers it is given, which would
    otherwise go along with the next request."""

    def __init__(self):
        super().__init__({"Authorization": "Bearer " + key})



def ok(name):
    print("ok", name, flush=True)


assert client.is_server_live(headers=Headers())
assert client.is_server_ready(headers=Headers())
assert client.is_model_ready("linear", headers=Headers())
ok("live and ready")

meta = client.get_server_metadata(headers=Headers())
assert meta["name"] == "mlgate", meta
ok("server metadata")

meta = client.get_model_metadata("linear", headers=Headers())
assert meta["name"] == "linear" and meta["inputs"][0]["name"] == "x", meta
ok("model metadata")

config = client.get_model_config("linear", headers=Headers())
assert config["input"][0]["data_type"] == "TYPE_FP32", config
ok("model config")

x = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
inp = httpclient.InferInput("x", list(x.shape), "FP32")
inp.set_data_from_numpy(x, binary_data=False)
result = client.infer("linear", [inp], headers=Headers())
y = result.as_numpy(meta["outputs"][0]["name"])
assert y is not None and y.shape[0] == 2, y
ok("infer FP32 as JSON")

inp = httpclient.InferInput("x", list(x.shape), "FP32")
inp.set_data_from_numpy(x, binary_data=True)
out = httpclient.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=True)
binary = client.infer("linear", [inp], outputs=[out], headers=Headers()).as_numpy(meta["outputs"][0]["name"])
assert np.array_equal(binary, y), (binary, y)
ok("infer FP32 with binary inputs and outputs")

bad = httpclient.InferInput("x", [1, 3], "FP32")
bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)
try:
    client.infer("linear", [bad], headers=Headers())
    raise AssertionError("a wrong input was answered")
except InferenceServerException as e:
    assert "x" in e.message(), e.message()
ok("wrong input reported with the gateway's message")

stats = client.get_inference_statistics("linear", headers=Headers())
assert stats["model_stats"][0]["inference_stats"]["success"]["count"] >= 1, stats
ok("statistics")

index = client.get_model_repository_index(headers=Headers())
assert any(m["name"] == "linear" and m["state"] == "READY" for m in index), index
ok("repository index")
