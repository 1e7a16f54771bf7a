"""Acts on an MLflow tracking server as a data scientist would.

Usage: mlflow_ctl.py URI ACTION [+ ACTION ...], each ACTION one of
  log MODEL ONNX_FILE      log an ONNX model and register it as the next version
  text MODEL               register a version that is a text file, no model
  tag MODEL N KEY VALUE    tag version N
  alias MODEL ALIAS N      point ALIAS at version N
The actions run in order, in one process (importing mlflow takes seconds).
"""
import sys

import mlflow
import onnx
from mlflow import MlflowClient

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
actions, action = [], []
for arg in sys.argv[2:] + ["+"]:
    if arg == "+":
        actions.append(action)
        action = []
    else:
        action.append(arg)
for what, name, *rest in actions:
    if what == "log":
        with mlflow.start_run():
            mlflow.onnx.log_model(onnx.load(rest[0]), name="model", registered_model_name=name)
    elif what == "text":
        with mlflow.start_run() as run:
            mlflow.log_text("not a model", "notes.txt")
            client.create_model_version(name, run.info.artifact_uri + "/notes.txt", run.info.run_id)
    elif what == "tag":
        client.set_model_version_tag(name, rest[0], rest[1], rest[2])
    elif what == "alias":
        client.set_registered_model_alias(name, rest[0], rest[1])
    else:
        sys.exit("unknown action " + what)
print("ok")
