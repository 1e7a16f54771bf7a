"""Registers models in an MLflow tracking server as a data scientist would.

Usage: log_models.py TRACKING_URI MODEL_NAME LINEAR_ONNX LINEAR_V2_ONNX

Version 1 and 2 are ONNX models logged with mlflow.onnx.log_model (the
second with a description and a tag), version 3 is a text file that is no
model; alias champion points at version 1.
"""
import sys

import mlflow
import onnx
from mlflow import MlflowClient

uri, name, v1, v2 = sys.argv[1:5]
mlflow.set_tracking_uri(uri)
client = MlflowClient()
with mlflow.start_run():
    mlflow.onnx.log_model(onnx.load(v1), name="model", registered_model_name=name)
with mlflow.start_run():
    mlflow.onnx.log_model(onnx.load(v2), name="model", registered_model_name=name)
client.update_model_version(name, "2", description="weights refit on May data")
client.set_model_version_tag(name, "2", "team", "risk")
with mlflow.start_run() as run:
    mlflow.log_text("not a model", "notes.txt")
    client.create_model_version(name, run.info.artifact_uri + "/notes.txt", run.info.run_id)
client.set_registered_model_alias(name, "champion", "1")
print("ok")
