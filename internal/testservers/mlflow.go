package testservers

import "testing"

// MLflowPython returns a Python interpreter with mlflow, onnx and
// onnxruntime (TEST_MLFLOW_PYTHON, which `make mlflow` sets up in an
// environment of its own), for running a real MLflow tracking server and
// logging models into it as a data scientist would.
func MLflowPython(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_MLFLOW_PYTHON", "Python with mlflow (make mlflow, then TEST_MLFLOW_PYTHON=.cache/mlflowenv/bin/python)")[0]
}
