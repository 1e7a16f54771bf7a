"""KServe's InferenceRESTClient (V2 protocol), unmodified, against a running
mlgate.

Usage: kserve_rest.py HOST:PORT API_KEY
Prints "ok <check>" for each check that passes; raises on the first that
does not. The models and the endpoint it calls are described in expect.py.

The client has no calls for metadata: those are read with httpx, the
client's own HTTP library, and parsed with KServe's own V2 data models
(kserve.protocol.rest.v2_datamodels), which is what a KServe user would
do. KServe's V2 REST protocol has no model config, statistics or
repository index (tritonclient checks those).
"""
import asyncio
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse, ServerMetadataResponse

import expect

url, key = "http://" + sys.argv[1], sys.argv[2]


def headers(**more):
    # A fresh dict for each call: the client adds the binary data's
    # headers to the one it is given.
    return {"Authorization": "Bearer " + key, **more}


def ok(name):
    print("ok", name, flush=True)


def tensor(name, value, datatype, binary):
    t = InferInput(name=name, shape=list(value.shape), datatype=datatype)
    t.set_data_from_numpy(value, binary_data=binary)
    return t


def request(model, inputs, outputs, binary, request_id=None):
    """A request for outputs, in binary if binary: the client's parameter
    binary_data_output for all of them, and each one's binary_data."""
    return InferRequest(
        model_name=model, infer_inputs=inputs, request_id=request_id,
        parameters={"binary_data_output": True} if binary else None,
        request_outputs=[RequestedOutput(n, {"binary_data": binary}) for n in outputs] if outputs else None)


async def infer(client, model, req, binary, **more):
    """The answer, having checked it came in binary if, and only if, binary
    data were asked for."""
    answer_headers = {}
    res = await client.infer(url, req, model_name=model, headers=headers(**more), response_headers=answer_headers)
    assert ("inference-header-content-length" in answer_headers) == binary, answer_headers
    return res


def output(res, name):
    out = res.get_output_by_name(name)
    assert out is not None, res
    return out


async def main():
    async with httpx.AsyncClient() as http:
        meta = ServerMetadataResponse.model_validate_json((await http.get(url + "/v2", headers=headers())).raise_for_status().content)
        assert meta.name == "mlgate" and "binary_tensor_data" in meta.extensions, meta
        ok("server metadata, in KServe's data model")
        for model in expect.MODELS:
            r = (await http.get(url + "/v2/models/" + model, headers=headers())).raise_for_status()
            meta = ModelMetadataResponse.model_validate_json(r.content)
            assert meta.name == model and meta.platform == "onnx_onnxv1", meta
        meta = ModelMetadataResponse.model_validate_json((await http.get(url + "/v2/models/linear/versions/1", headers=headers())).raise_for_status().content)
        assert [(t.name, t.datatype, t.shape) for t in meta.inputs] == [("x", "FP32", [-1, 4])], meta
        ok("model metadata, in KServe's data model")

    client = InferenceRESTClient(config=RESTConfig(protocol="v2", retries=0))
    try:
        assert await client.is_server_live(url, headers=headers())
        assert await client.is_server_ready(url, headers=headers())
        for model in expect.MODELS:
            assert await client.is_model_ready(url, model, headers=headers()), model
        assert not await client.is_model_ready(url, "no_such_model", headers=headers())
        ok("live and ready")

        for binary in (False, True):
            how = "binary" if binary else "JSON"
            req = request("linear", [tensor("x", expect.X, "FP32", binary)], ["y"], binary, request_id="kserve-" + how)
            res = await infer(client, "linear", req, binary)
            assert res.model_name == "linear" and res.id == "kserve-" + how, res
            expect.check_linear(output(res, "y").as_numpy())
            ok("infer FP32 in %s, inputs and outputs" % how)

            req = request("multi_input", [tensor("a", expect.A, "FP32", binary), tensor("b", expect.B, "INT64", binary)], None, binary)
            res = await infer(client, "multi_input", req, binary)
            expect.check_multi_input(output(res, "sum").as_numpy(), output(res, "b_doubled").as_numpy())
            ok("infer FP32 and INT64 in %s" % how)

            req = request("strings", [tensor("text", expect.TEXT, "BYTES", binary)], ["code", "echo"], binary)
            res = await infer(client, "strings", req, binary)
            expect.check_strings(output(res, "code").as_numpy(), output(res, "echo").as_numpy())
            ok("infer BYTES in %s" % how)

            # The ZipMap's datatype JSON is none of KServe's numpy types:
            # its maps are read from the output's data, which stays JSON
            # when the label comes in binary.
            req = request("iris", [tensor("float_input", expect.FLOWERS, "FP32", binary)], None, binary)
            res = await infer(client, "iris", req, binary)
            expect.check_labels(output(res, "output_label").as_numpy())
            probs = output(res, "output_probability")
            assert probs.datatype == "JSON" and probs.shape == [3], probs
            expect.check_zipmap(probs.data)
            ok("infer the ZipMap model in %s" % how)

            for variant, version in expect.VARIANTS.items():
                req = request(expect.ENDPOINT, [tensor("x", expect.X, "FP32", binary)], ["y"], binary)
                res = await infer(client, expect.ENDPOINT, req, binary, **{expect.VARIANT_HEADER: variant})
                expect.check_linear(output(res, "y").as_numpy(), version=version)
                assert res.parameters == {"endpoint": expect.ENDPOINT, "variant": variant}, res
            ok("infer the endpoint in %s, each variant pinned" % how)

            bad = tensor("x", np.zeros((1, 3), dtype=np.float32), "FP32", binary)
            try:
                await client.infer(url, InferRequest(model_name="linear", infer_inputs=[bad]), model_name="linear", headers=headers())
                raise AssertionError("a wrong input was answered")
            except httpx.HTTPStatusError as e:
                assert e.response.status_code == 400, e
                # The client puts the gateway's "error" in its message.
                expect.check_wrong_input(str(e))
            ok("wrong input in %s reported with the gateway's message" % how)

        x = tensor("x", expect.X, "FP32", False)
        for req, model, more, status, check in [
            (InferRequest(model_name="linear", infer_inputs=[tensor("x", expect.X.astype(np.int64), "INT64", False)]), "linear", headers(), 400, expect.check_wrong_datatype),
            (InferRequest(model_name=expect.ENDPOINT, infer_inputs=[x]), expect.ENDPOINT, headers(**{expect.VARIANT_HEADER: "v3"}), 400, expect.check_unknown_variant),
            (InferRequest(model_name="linear", infer_inputs=[x]), "linear", None, 401, expect.check_no_key),
        ]:
            try:
                await client.infer(url, req, model_name=model, headers=more)
                raise AssertionError("a wrong request was answered")
            except httpx.HTTPStatusError as e:
                assert e.response.status_code == status, e
                check(str(e))
        ok("wrong datatype, unknown variant and missing key reported with the gateway's messages")
    finally:
        await client.close()


asyncio.run(main())
