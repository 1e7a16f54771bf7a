"""tritonclient's gRPC client, unmodified, against a running mlgate.

Usage: triton_grpc.py HOST:PORT API_KEY
Each check raises on a wrong answer; the script prints "ok <check>" for each
one that passes, and exits non-zero on the first that does not. The models
and the endpoint it calls are described in expect.py.

tritonclient's gRPC client sends every input in raw_input_contents and reads
outputs from raw_output_contents (typed contents only for BYTES): this
script covers the raw path; kserve_grpc.py covers typed contents.
"""
import asyncio
import queue
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import expect

url, key = sys.argv[1], sys.argv[2]
client = grpcclient.InferenceServerClient(url=url)


def headers(**more):
    """The key as gRPC metadata (whose keys are lower case), and any more,
    in a fresh dict for each call."""
    return {"authorization": "Bearer " + key, **{k.lower(): v for k, v in more.items()}}


def ok(name):
    print("ok", name, flush=True)


def tensor(name, value, datatype):
    t = grpcclient.InferInput(name, list(value.shape), datatype)
    t.set_data_from_numpy(value)
    return t


def wanted(*names):
    return [grpcclient.InferRequestedOutput(n) for n in names]


def is_raw(result):
    """Whether every output came in raw_output_contents, as tritonclient
    reads them: by position, so it must be all or none."""
    answer = result.get_response()
    return len(answer.raw_output_contents) == len(answer.outputs) and not any(o.HasField("contents") for o in answer.outputs)


assert client.is_server_live(headers=headers())
assert client.is_server_ready(headers=headers())
for m in expect.MODELS:
    assert client.is_model_ready(m, headers=headers()), m
assert client.is_model_ready("linear", "1", headers=headers())
ok("live and ready")

meta = client.get_server_metadata(headers=headers(), as_json=True)
assert meta["name"] == "mlgate" and "binary_tensor_data" in meta.get("extensions", []), meta
ok("server metadata")

meta = client.get_model_metadata("linear", headers=headers(), as_json=True)
assert meta["name"] == "linear" and meta["versions"] == ["1", "2"], meta
# MessageToJson writes int64 values as strings.
assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]] == [("x", "FP32", [-1, 4])], meta
meta = client.get_model_metadata("multi_input", headers=headers(), as_json=True)
assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("a", "FP32"), ("b", "INT64")], meta
meta = client.get_model_metadata("strings", headers=headers(), as_json=True)
assert meta["inputs"][0]["datatype"] == "BYTES" and meta["outputs"][1]["datatype"] == "BYTES", meta
meta = client.get_model_metadata("iris", headers=headers(), as_json=True)
# Over gRPC the ZipMap's maps are a BYTES tensor (see the infer below).
assert {t["name"]: t["datatype"] for t in meta["outputs"]} == {"output_label": "INT64", "output_probability": "BYTES"}, meta
ok("model metadata")

config = client.get_model_config("linear", headers=headers()).config
assert config.name == "linear" and config.input[0].name == "x" and list(config.input[0].dims) == [-1, 4], config
assert config.input[0].data_type == grpcclient.model_config_pb2.TYPE_FP32, config
config = client.get_model_config("strings", headers=headers()).config
assert config.input[0].data_type == grpcclient.model_config_pb2.TYPE_STRING, config
config = client.get_model_config("multi_input", headers=headers()).config
assert [t.data_type for t in config.output] == [grpcclient.model_config_pb2.TYPE_FP32, grpcclient.model_config_pb2.TYPE_INT64], config
# A ZipMap's maps have no type of their own in Triton's configuration: strings.
config = client.get_model_config("iris", headers=headers()).config
assert {t.name: t.data_type for t in config.output} == {"output_label": grpcclient.model_config_pb2.TYPE_INT64, "output_probability": grpcclient.model_config_pb2.TYPE_STRING}, config
ok("model config")

r = client.infer("linear", [tensor("x", expect.X, "FP32")], outputs=wanted("y"), request_id="fp32-grpc", headers=headers())
expect.check_linear(r.as_numpy("y"))
assert r.get_response().id == "fp32-grpc" and r.get_response().model_version == "2", r.get_response()
assert is_raw(r), r.get_response()
ok("infer FP32, raw contents in and out")

r = client.infer("linear", [tensor("x", expect.X, "FP32")], model_version="1", headers=headers())
expect.check_linear(r.as_numpy("y"), version="1")
ok("infer FP32, version 1 named, every output")

r = client.infer("multi_input", [tensor("a", expect.A, "FP32"), tensor("b", expect.B, "INT64")], headers=headers())
expect.check_multi_input(r.as_numpy("sum"), r.as_numpy("b_doubled"))
r = client.infer("multi_input", [tensor("a", expect.A, "FP32"), tensor("b", expect.B, "INT64")], outputs=wanted("b_doubled", "sum"), headers=headers())
expect.check_multi_input(r.as_numpy("sum"), r.as_numpy("b_doubled"))
ok("infer FP32 and INT64")

r = client.infer("strings", [tensor("text", expect.TEXT, "BYTES")], headers=headers())
expect.check_strings(r.as_numpy("code"), r.as_numpy("echo"))
assert is_raw(r), r.get_response()
ok("infer BYTES")

# Over gRPC a ZipMap's maps come as a BYTES tensor, each map's JSON text
# an element, which the client reads like any BYTES output.
r = client.infer("iris", [tensor("float_input", expect.FLOWERS, "FP32")], headers=headers())
expect.check_labels(r.as_numpy("output_label"))
assert is_raw(r), r.get_response()
probs = r.get_output("output_probability")
assert probs.datatype == "BYTES" and list(probs.shape) == [3], probs
expect.check_zipmap(expect.maps(r.as_numpy("output_probability")))
ok("infer the ZipMap model")

for variant, version in expect.VARIANTS.items():
    r = client.infer(expect.ENDPOINT, [tensor("x", expect.X, "FP32")], headers=headers(**{expect.VARIANT_HEADER: variant}))
    expect.check_linear(r.as_numpy("y"), version=version)
    answer = r.get_response()
    params = {k: v.string_param for k, v in answer.parameters.items()}
    assert params == {"endpoint": expect.ENDPOINT, "variant": variant}, answer
    assert answer.model_version == version, answer
ok("infer the endpoint, each variant pinned")

try:
    client.infer("linear", [tensor("x", np.zeros((1, 3), dtype=np.float32), "FP32")], headers=headers())
    raise AssertionError("a wrong input was answered")
except InferenceServerException as e:
    assert e.status() == "StatusCode.INVALID_ARGUMENT", e.status()
    expect.check_wrong_input(e.message())
ok("wrong input reported with the gateway's message")

answers = queue.Queue()
client.async_infer("linear", [tensor("x", expect.X, "FP32")], lambda result, error: answers.put((result, error)), headers=headers())
r, err = answers.get(timeout=30)
assert err is None, err
expect.check_linear(r.as_numpy("y"))
ok("async infer")

# ModelStreamInfer: the stream's metadata pin the endpoint's variant v1.
client.start_stream(lambda result, error: answers.put((result, error)), headers=headers(**{expect.VARIANT_HEADER: "v1"}))
try:
    client.async_stream_infer(expect.ENDPOINT, [tensor("x", expect.X, "FP32")], request_id="s1")
    client.async_stream_infer(expect.ENDPOINT, [tensor("x", expect.X[:1], "FP32")], request_id="s2")
    sent = {"s1": expect.X, "s2": expect.X[:1]}
    for _ in range(len(sent)):
        r, err = answers.get(timeout=30)
        assert err is None, err
        expect.check_linear(r.as_numpy("y"), x=sent.pop(r.get_response().id), version="1")
finally:
    client.stop_stream()
ok("stream infer, the endpoint's variant pinned by the stream's metadata")

r = client.infer("linear", [tensor("x", expect.X, "FP32")], headers=headers(), compression_algorithm="gzip")
expect.check_linear(r.as_numpy("y"))
ok("infer with gzip compression")

x = tensor("x", expect.X, "FP32")
for call, status, check in [
    (lambda: client.infer("linear", [tensor("x", expect.X.astype(np.int64), "INT64")], headers=headers()), "INVALID_ARGUMENT", expect.check_wrong_datatype),
    (lambda: client.infer(expect.ENDPOINT, [x], headers=headers(**{expect.VARIANT_HEADER: "v3"})), "INVALID_ARGUMENT", expect.check_unknown_variant),
    (lambda: client.infer("linear", [x]), "UNAUTHENTICATED", expect.check_no_key),
]:
    try:
        call()
        raise AssertionError("a wrong request was answered")
    except InferenceServerException as e:
        assert e.status() == "StatusCode." + status, (e.status(), e.message())
        check(e.message())
ok("wrong datatype, unknown variant and missing key reported with the gateway's messages")

stats = client.get_inference_statistics("linear", headers=headers(), as_json=True)
by_version = {s["version"]: s for s in stats["model_stats"]}
assert sorted(by_version) == ["1", "2"], stats
# MessageToJson leaves out zero counts and writes uint64 values as strings.
assert int(by_version["1"]["inference_stats"]["success"]["count"]) >= 2, stats
assert int(by_version["2"]["inference_stats"]["success"]["count"]) >= 2, stats
assert int(by_version["2"]["inference_stats"]["fail"]["count"]) >= 1, stats
stats = client.get_inference_statistics(headers=headers(), as_json=True)
assert {s["name"] for s in stats["model_stats"]} >= set(expect.MODELS), stats
ok("statistics")

index = client.get_model_repository_index(headers=headers(), as_json=True)
ready = {(m["name"], m["version"]) for m in index["models"] if m.get("state") == "READY"}
assert ready >= {("linear", "1"), ("linear", "2"), ("multi_input", "1"), ("strings", "1"), ("iris", "1")}, index
ok("repository index")


async def with_aio():
    """tritonclient.grpc.aio, the asyncio client: metadata and an infer to
    the endpoint, variant v1 pinned."""
    import tritonclient.grpc.aio as aioclient

    aio = aioclient.InferenceServerClient(url=url)
    try:
        assert await aio.is_model_ready("linear", headers=headers())
        meta = await aio.get_model_metadata("strings", headers=headers())
        assert meta.name == "strings", meta
        x = aioclient.InferInput("x", list(expect.X.shape), "FP32")
        x.set_data_from_numpy(expect.X)
        r = await aio.infer(expect.ENDPOINT, [x], headers=headers(**{expect.VARIANT_HEADER: "v1"}))
        expect.check_linear(r.as_numpy("y"), version="1")
        assert {k: v.string_param for k, v in r.get_response().parameters.items()} == {"endpoint": expect.ENDPOINT, "variant": "v1"}, r.get_response()
    finally:
        await aio.close()


asyncio.run(with_aio())
ok("the asyncio client: readiness, metadata, infer")
