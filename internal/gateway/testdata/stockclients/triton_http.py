"""tritonclient's HTTP client, unmodified, against a running mlgate.

Usage: triton_http.py HOST:PORT API_KEY
Each check raises on a wrong answer; the script prints "ok <check>" for each
one that passes, and exits non-zero on the first that does not. The models
and the endpoint it calls are described in expect.py.
"""
import asyncio
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import expect

url, key = sys.argv[1], sys.argv[2]
client = httpclient.InferenceServerClient(url=url)


class Headers(dict):
    """The key, and any other headers, as a fresh dict each time they are
    passed: tritonclient adds Inference-Header-Content-Length to the headers
    it is given, which would otherwise go along with the next request."""

    def __init__(self, **more):
        super().__init__({"Authorization": "Bearer " + key}, **more)


def ok(name):
    print("ok", name, flush=True)


def tensor(name, value, datatype, binary):
    t = httpclient.InferInput(name, list(value.shape), datatype)
    t.set_data_from_numpy(value, binary_data=binary)
    return t


def wanted(names, binary):
    return [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]


def is_binary(result, name):
    """Whether the answer carried name's data in binary."""
    return "binary_data_size" in (result.get_output(name).get("parameters") or {})


assert client.is_server_live(headers=Headers())
assert client.is_server_ready(headers=Headers())
for m in expect.MODELS:
    assert client.is_model_ready(m, headers=Headers()), m
assert client.is_model_ready("linear", "1", headers=Headers())
ok("live and ready")

meta = client.get_server_metadata(headers=Headers())
assert meta["name"] == "mlgate" and "binary_tensor_data" in meta["extensions"], meta
ok("server metadata")

meta = client.get_model_metadata("linear", headers=Headers())
assert meta["name"] == "linear" and meta["versions"] == ["1", "2"], meta
assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}], meta
assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}], meta
meta = client.get_model_metadata("multi_input", headers=Headers())
assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("a", "FP32"), ("b", "INT64")], meta
meta = client.get_model_metadata("strings", headers=Headers())
assert meta["inputs"][0]["datatype"] == "BYTES" and meta["outputs"][1] == {"name": "echo", "datatype": "BYTES", "shape": [-1, 1]}, meta
meta = client.get_model_metadata("iris", headers=Headers())
assert {t["name"]: t["datatype"] for t in meta["outputs"]} == {"output_label": "INT64", "output_probability": "JSON"}, meta
ok("model metadata")

config = client.get_model_config("linear", headers=Headers())
assert config["name"] == "linear" and config["input"][0] == {"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 4]}, config
config = client.get_model_config("strings", headers=Headers())
assert config["input"][0]["data_type"] == "TYPE_STRING", config
config = client.get_model_config("multi_input", headers=Headers())
assert [t["data_type"] for t in config["output"]] == ["TYPE_FP32", "TYPE_INT64"], config
# A ZipMap's maps have no type of their own in Triton's configuration: strings.
config = client.get_model_config("iris", headers=Headers())
assert {t["name"]: t["data_type"] for t in config["output"]} == {"output_label": "TYPE_INT64", "output_probability": "TYPE_STRING"}, config
ok("model config")

for binary in (False, True):
    how = "binary" if binary else "JSON"
    r = client.infer("linear", [tensor("x", expect.X, "FP32", binary)], outputs=wanted(["y"], binary),
                     request_id="fp32-%s" % how, headers=Headers())
    expect.check_linear(r.as_numpy("y"))
    assert is_binary(r, "y") == binary and r.get_response()["model_version"] == "2", r.get_response()
    assert r.get_response()["id"] == "fp32-%s" % how, r.get_response()
    ok("infer FP32 in %s, inputs and outputs" % how)

    r = client.infer("linear", [tensor("x", expect.X, "FP32", binary)], model_version="1",
                     outputs=wanted(["y"], binary), headers=Headers())
    expect.check_linear(r.as_numpy("y"), version="1")
    ok("infer FP32 in %s, version 1 named" % how)

    r = client.infer("multi_input", [tensor("a", expect.A, "FP32", binary), tensor("b", expect.B, "INT64", binary)],
                     outputs=wanted(["sum", "b_doubled"], binary), headers=Headers())
    expect.check_multi_input(r.as_numpy("sum"), r.as_numpy("b_doubled"))
    assert is_binary(r, "b_doubled") == binary, r.get_response()
    ok("infer FP32 and INT64 in %s" % how)

    r = client.infer("strings", [tensor("text", expect.TEXT, "BYTES", binary)],
                     outputs=wanted(["code", "echo"], binary), headers=Headers())
    expect.check_strings(r.as_numpy("code"), r.as_numpy("echo"))
    assert is_binary(r, "echo") == binary, r.get_response()
    ok("infer BYTES in %s" % how)

    # A ZipMap has no binary form: asked for in binary, it still comes as
    # JSON objects beside the label, which does come in binary.
    r = client.infer("iris", [tensor("float_input", expect.FLOWERS, "FP32", binary)],
                     outputs=wanted(["output_label", "output_probability"], binary), headers=Headers())
    expect.check_labels(r.as_numpy("output_label"))
    assert is_binary(r, "output_label") == binary and not is_binary(r, "output_probability"), r.get_response()
    probs = r.get_output("output_probability")
    assert probs["datatype"] == "JSON" and probs["shape"] == [3], probs
    expect.check_zipmap(probs["data"])
    expect.check_zipmap(r.as_numpy("output_probability"))
    ok("infer the ZipMap model in %s" % how)

    # No outputs named: tritonclient asks for every output in binary
    # (binary_data_output).
    r = client.infer("strings", [tensor("text", expect.TEXT, "BYTES", binary)], headers=Headers())
    expect.check_strings(r.as_numpy("code"), r.as_numpy("echo"))
    assert is_binary(r, "code") and is_binary(r, "echo"), r.get_response()
    ok("infer BYTES with %s inputs, every output in binary" % how)

    for variant, version in expect.VARIANTS.items():
        r = client.infer(expect.ENDPOINT, [tensor("x", expect.X, "FP32", binary)], outputs=wanted(["y"], binary),
                         headers=Headers(**{expect.VARIANT_HEADER: variant}))
        expect.check_linear(r.as_numpy("y"), version=version)
        answer = r.get_response()
        assert answer["parameters"] == {"endpoint": expect.ENDPOINT, "variant": variant}, answer
        assert answer["model_version"] == version, answer
    ok("infer the endpoint in %s, each variant pinned" % how)

    bad = tensor("x", np.zeros((1, 3), dtype=np.float32), "FP32", binary)
    try:
        client.infer("linear", [bad], headers=Headers())
        raise AssertionError("a wrong input was answered")
    except InferenceServerException as e:
        assert e.status() == "400", e.status()
        expect.check_wrong_input(e.message())
    ok("wrong input in %s reported with the gateway's message" % how)

r = client.async_infer("linear", [tensor("x", expect.X, "FP32", True)], outputs=wanted(["y"], True), headers=Headers()).get_result()
expect.check_linear(r.as_numpy("y"))
ok("async infer")

# Content-Encoding: deflate is left out: the gateway inflates it as raw
# DEFLATE, but tritonclient (rightly, RFC 9110) sends the zlib format.
r = client.infer("linear", [tensor("x", expect.X, "FP32", True)], outputs=wanted(["y"], True), headers=Headers(),
                 request_compression_algorithm="gzip", response_compression_algorithm="gzip")
expect.check_linear(r.as_numpy("y"))
ok("infer with a gzip request, accepting a gzip answer")

x = tensor("x", expect.X, "FP32", False)
for call, status, check in [
    (lambda: client.infer("linear", [tensor("x", expect.X.astype(np.int64), "INT64", False)], headers=Headers()), "400", expect.check_wrong_datatype),
    (lambda: client.infer(expect.ENDPOINT, [x], headers=Headers(**{expect.VARIANT_HEADER: "v3"})), "400", expect.check_unknown_variant),
    (lambda: client.infer("linear", [x]), "401", expect.check_no_key),
]:
    try:
        call()
        raise AssertionError("a wrong request was answered")
    except InferenceServerException as e:
        assert e.status() == status, (e.status(), e.message())
        check(e.message())
ok("wrong datatype, unknown variant and missing key reported with the gateway's messages")

stats = client.get_inference_statistics("linear", headers=Headers())
by_version = {s["version"]: s for s in stats["model_stats"]}
assert sorted(by_version) == ["1", "2"], stats
assert all(s["name"] == "linear" for s in stats["model_stats"]), stats
# Version 1: named twice and pinned by v1 twice; version 2: four more.
assert by_version["1"]["inference_stats"]["success"]["count"] >= 4, stats
assert by_version["2"]["inference_stats"]["success"]["count"] >= 4, stats
assert by_version["2"]["inference_stats"]["fail"]["count"] >= 2, stats
stats = client.get_inference_statistics(headers=Headers())
assert {s["name"] for s in stats["model_stats"]} >= set(expect.MODELS), stats
ok("statistics")

index = client.get_model_repository_index(headers=Headers())
ready = {(m["name"], m["version"]) for m in index if m["state"] == "READY"}
assert ready >= {("linear", "1"), ("linear", "2"), ("multi_input", "1"), ("strings", "1"), ("iris", "1")}, index
ok("repository index")


async def with_aio():
    """tritonclient.http.aio, the asyncio client: metadata and an infer in
    binary to the endpoint, variant v1 pinned."""
    import tritonclient.http.aio as aioclient

    aio = aioclient.InferenceServerClient(url=url)
    try:
        assert await aio.is_model_ready("linear", headers=Headers())
        meta = await aio.get_model_metadata("strings", headers=Headers())
        assert meta["name"] == "strings", meta
        x = aioclient.InferInput("x", list(expect.X.shape), "FP32")
        x.set_data_from_numpy(expect.X, binary_data=True)
        r = await aio.infer(expect.ENDPOINT, [x], outputs=[aioclient.InferRequestedOutput("y", binary_data=True)],
                            headers=Headers(**{expect.VARIANT_HEADER: "v1"}))
        expect.check_linear(r.as_numpy("y"), version="1")
        assert r.get_response()["parameters"] == {"endpoint": expect.ENDPOINT, "variant": "v1"}, r.get_response()
    finally:
        await aio.close()


asyncio.run(with_aio())
ok("the asyncio client: readiness, metadata, infer")
