"""Registers models in an MLflow tracking server as a data scientist would.

Usage: log_models.py TRACKING_URI MODEL_NAME LINEAR_ONNX LINEAR_V2_ONNX

Version 1 is an ONNX model logged with mlflow.onnx.log_model; version 2
one saved with mlflow.onnx.save_model beside an mlgate.json, logged as the
run's artifacts and registered from them, with a description and a tag;
version 3 is a text file that is no model. Alias champion points at
version 1.
"""
import json
import os
import sys
import tempfile

import mlflow
import onnx
from mlflow import MlflowClient

uri, name, v1, v2 = sys.argv[1:5]
mlflow.set_tracking_uri(uri)
client = MlflowClient()
with mlflow.start_run():
    mlflow.onnx.log_model(onnx.load(v1), name="model", registered_model_name=name)
with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model")
    mlflow.onnx.save_model(onnx.load(v2), path)
    with open(os.path.join(path, "mlgate.json"), "w") as f:
        json.dump({"baseline": {"features": {}}}, f)
    mlflow.log_artifacts(path, "model")
    client.create_model_version(name, run.info.artifact_uri + "/model", run.info.run_id)
client.update_model_version(name, "2", description="weights refit on May data")
client.set_model_version_tag(name, "2", "team", "risk")
with mlflow.start_run() as run:
    mlflow.log_text("not a model", "notes.txt")
    client.create_model_version(name, run.info.artifact_uri + "/notes.txt", run.info.run_id)
client.set_registered_model_alias(name, "champion", "1")
print("ok")
