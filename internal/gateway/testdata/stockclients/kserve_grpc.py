"""KServe's InferenceGRPCClient, unmodified, against a running mlgate.

Usage: kserve_grpc.py HOST:PORT API_KEY
Prints "ok <check>" for each check that passes; raises on the first that
does not. The models and the endpoint it calls are described in expect.py.

The client sends an input set with binary_data=False in the typed contents
(fp32_contents, int64_contents, bytes_contents) and one set with
binary_data=True in raw_input_contents, so this script covers both; it
reads outputs from either (raw_output_contents by position). It has calls
for readiness and infer only: server and model metadata are read with the
generated stub and messages KServe ships (kserve.protocol.grpc), on a
channel of the script's own. KServe's protocol has no model config,
statistics or repository index (triton_grpc.py checks those).
"""
import asyncio
import logging
import sys

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.infer_type import RequestedOutput

import expect

addr, key = sys.argv[1], sys.argv[2]
# The client logs each failed call with its traceback before raising it;
# the wrong input's is expected.
logging.getLogger("kserve").setLevel(logging.CRITICAL)


def metadata(**more):
    return (("authorization", "Bearer " + key),) + tuple((k.lower(), v) for k, v in more.items())


def ok(name):
    print("ok", name, flush=True)


def tensor(name, value, datatype, raw):
    t = InferInput(name=name, shape=list(value.shape), datatype=datatype)
    t.set_data_from_numpy(value, binary_data=raw)
    return t


def request(model, inputs, outputs=None, request_id=None):
    return InferRequest(model_name=model, infer_inputs=inputs, request_id=request_id,
                        request_outputs=[RequestedOutput(n) for n in outputs] if outputs else None)


def output(res, name):
    out = res.get_output_by_name(name)
    assert out is not None, res
    return out


def params(res):
    return {k: v.string_param for k, v in res.parameters.items()}


async def main():
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = GRPCInferenceServiceStub(channel)
        meta = await stub.ServerMetadata(pb.ServerMetadataRequest(), metadata=metadata())
        assert meta.name == "mlgate" and "binary_tensor_data" in meta.extensions, meta
        ok("server metadata, with KServe's stub")
        for model in expect.MODELS:
            meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name=model), metadata=metadata())
            assert meta.name == model and meta.platform == "onnx_onnxv1", meta
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="linear", version="1"), metadata=metadata())
        assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("x", "FP32", [-1, 4])], meta
        ok("model metadata, with KServe's stub")

        # Typed contents in, typed contents out; raw in, raw out (as KServe's
        # own server answers): seen on KServe's message itself, since the
        # client's InferResponse reads either alike.
        for raw in (False, True):
            req = request("multi_input", [tensor("a", expect.A, "FP32", raw), tensor("b", expect.B, "INT64", raw)]).to_grpc()
            answer = await stub.ModelInfer(req, metadata=metadata())
            typed = [o.name for o in answer.outputs if o.HasField("contents")]
            if raw:
                assert len(answer.raw_output_contents) == 2 and not typed, answer
            else:
                assert not answer.raw_output_contents and typed == ["sum", "b_doubled"], answer
                assert list(answer.outputs[1].contents.int64_contents) == list((expect.B * 2).reshape(-1)), answer
        ok("infer answers raw contents for raw inputs, typed for typed, with KServe's stub")

    client = InferenceGRPCClient(addr, retries=0)
    try:
        assert await client.is_server_live(headers=metadata())
        assert await client.is_server_ready(headers=metadata())
        for model in expect.MODELS:
            assert await client.is_model_ready(model, headers=metadata()), model
        ok("live and ready")

        for raw in (False, True):
            how = "raw contents" if raw else "typed contents"
            res = await client.infer(request("linear", [tensor("x", expect.X, "FP32", raw)], ["y"], "kserve-grpc-%s" % raw), headers=metadata())
            assert res.model_name == "linear" and res.model_version == "2" and res.id == "kserve-grpc-%s" % raw, res
            expect.check_linear(output(res, "y").as_numpy())
            ok("infer FP32 in %s" % how)

            res = await client.infer(request("multi_input", [tensor("a", expect.A, "FP32", raw), tensor("b", expect.B, "INT64", raw)]), headers=metadata())
            expect.check_multi_input(output(res, "sum").as_numpy(), output(res, "b_doubled").as_numpy())
            ok("infer FP32 and INT64 in %s" % how)

            res = await client.infer(request("strings", [tensor("text", expect.TEXT, "BYTES", raw)], ["code", "echo"]), headers=metadata())
            expect.check_strings(output(res, "code").as_numpy(), output(res, "echo").as_numpy())
            ok("infer BYTES in %s" % how)

            # Over gRPC a ZipMap's maps come as a BYTES tensor, each map's
            # JSON text an element, which the client reads like any BYTES.
            res = await client.infer(request("iris", [tensor("float_input", expect.FLOWERS, "FP32", raw)]), headers=metadata())
            expect.check_labels(output(res, "output_label").as_numpy())
            probs = output(res, "output_probability")
            assert probs.datatype == "BYTES" and probs.shape == [3], probs
            expect.check_zipmap(expect.maps(probs.as_numpy()))
            ok("infer the ZipMap model in %s" % how)

            for variant, version in expect.VARIANTS.items():
                res = await client.infer(request(expect.ENDPOINT, [tensor("x", expect.X, "FP32", raw)]),
                                         headers=metadata(**{expect.VARIANT_HEADER: variant}))
                expect.check_linear(output(res, "y").as_numpy(), version=version)
                assert params(res) == {"endpoint": expect.ENDPOINT, "variant": variant} and res.model_version == version, res
            ok("infer the endpoint in %s, each variant pinned" % how)

            bad = tensor("x", np.zeros((1, 3), dtype=np.float32), "FP32", raw)
            try:
                await client.infer(request("linear", [bad]), headers=metadata())
                raise AssertionError("a wrong input was answered")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
                expect.check_wrong_input(e.details())
            ok("wrong input in %s reported with the gateway's message" % how)

        x = tensor("x", expect.X, "FP32", False)
        for req, more, status, check in [
            (request("linear", [tensor("x", expect.X.astype(np.int64), "INT64", False)]), metadata(), grpc.StatusCode.INVALID_ARGUMENT, expect.check_wrong_datatype),
            (request(expect.ENDPOINT, [x]), metadata(**{expect.VARIANT_HEADER: "v3"}), grpc.StatusCode.INVALID_ARGUMENT, expect.check_unknown_variant),
            (request("linear", [x]), None, grpc.StatusCode.UNAUTHENTICATED, expect.check_no_key),
        ]:
            try:
                await client.infer(req, headers=more)
                raise AssertionError("a wrong request was answered")
            except grpc.aio.AioRpcError as e:
                assert e.code() == status, e
                check(e.details())
        ok("wrong datatype, unknown variant and missing key reported with the gateway's messages")
    finally:
        await client.close()


asyncio.run(main())
