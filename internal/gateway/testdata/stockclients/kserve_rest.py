"""KServe's InferenceRESTClient (V2 protocol), unmodified, against a running
mlgate.

Usage: kserve_rest.py HOST:PORT API_KEY
Prints "ok <check>" for each check that passes; raises on the first that
does not.
"""
import asyncio
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

url, key = "http://" + sys.argv[1], sys.argv[2]
headers = {"Authorization": "Bearer " + key}


def ok(name):
    print("ok", name, flush=True)


async def main():
    client = InferenceRESTClient(config=RESTConfig(protocol="v2", retries=0))
    try:
        assert await client.is_server_live(url, headers=headers)
        assert await client.is_server_ready(url, headers=headers)
        assert await client.is_model_ready(url, "linear", headers=headers)
        ok("live and ready")

        x = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
        for binary in (False, True):
            inp = InferInput(name="x", shape=list(x.shape), datatype="FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            req = InferRequest(model_name="linear", infer_inputs=[inp], request_id="kserve-%s" % binary)
            res = await client.infer(url, req, model_name="linear", headers=headers)
            y = res.outputs[0].as_numpy()
            assert res.model_name == "linear" and y.shape[0] == 2, res
            ok("infer FP32, binary %s" % binary)

        bad = InferInput(name="x", shape=[1, 3], datatype="FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)
        try:
            await client.infer(url, InferRequest(model_name="linear", infer_inputs=[bad]), model_name="linear", headers=headers)
            raise AssertionError("a wrong input was answered")
        except httpx.HTTPStatusError as e:
            assert e.response.status_code == 400 and "x" in str(e), str(e)
        ok("wrong input reported with the gateway's message")
    finally:
        await client.close()


asyncio.run(main())
