# mlgate: `make run` starts the gateway with a demo model, `make test` runs every test.
# Both fetch what they need: ONNX Runtime's shared library comes from the npm
# registry's onnxruntime-node package into .cache/ unless ONNXRUNTIME_LIB names one.
# `make test` also runs a private Redis and Cassandra on loopback for the tests
# (deploy/with-services.sh; `make services-up` / `services-down` by hand, see deploy/README.md).

ORT_VERSION := 1.24.3
ORT_DIR     := $(CURDIR)/.cache/onnxruntime/$(ORT_VERSION)
ORT_CACHED  := $(ORT_DIR)/libonnxruntime.so.1

ifeq ($(strip $(ONNXRUNTIME_LIB)),)
ORT_LIB := $(ORT_CACHED)
else
ORT_LIB := $(ONNXRUNTIME_LIB)
endif
export ONNXRUNTIME_LIB := $(ORT_LIB)
export CGO_ENABLED := 1

# An independent Parquet reader (pyarrow, from PyPI) for the inference-table tests.
PYARROW_VERSION := 26.0.1
PYENV           := $(CURDIR)/.cache/pyenv
export TEST_PYTHON := $(PYENV)/bin/python

GO ?= go
TEST_TIMEOUT ?= 20m

.PHONY: all build run test bench lint fuzz clean services-up services-down onnxruntime pyarrow pyclients feast mlflow promtool chromium spark proto

all: build

$(ORT_CACHED):
	@echo "fetching ONNX Runtime $(ORT_VERSION) from the npm registry (onnxruntime-node)"
	@rm -rf $(ORT_DIR)/pkg && mkdir -p $(ORT_DIR)/pkg
	@cd $(ORT_DIR)/pkg && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null
	@tar -xzf $(ORT_DIR)/pkg/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR)/pkg package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	@mv $(ORT_DIR)/pkg/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@
	@rm -rf $(ORT_DIR)/pkg

onnxruntime: $(ORT_LIB)

# The commit, for mlgate_build_info's revision label (Go's own VCS stamp is off under
# -buildvcs=false).
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
build: onnxruntime
	$(GO) build -ldflags "-X github.com/mlgate/mlgate/internal/telemetry.Revision=$(REVISION)" -o bin/mlgate ./cmd/mlgate

# The demo serves the V2 protocol over gRPC too, on 127.0.0.1:8081 unless
# MLGATE_GRPC_LISTEN says otherwise.
run: build
	MLGATE_GRPC_LISTEN=$${MLGATE_GRPC_LISTEN-127.0.0.1:8081} ./bin/mlgate serve --demo

# Redis, Cassandra, PostgreSQL and a Redis Cluster run for the length of the tests
# (TEST_REDIS_ADDR, TEST_CASSANDRA_HOSTS, TEST_POSTGRES_DSN and TEST_REDIS_CLUSTER_ADDRS
# tell the tests where); with CI=true a server that cannot start fails the run,
# otherwise the tests that need it skip.
$(PYENV)/.pyarrow-$(PYARROW_VERSION):
	@echo "installing pyarrow $(PYARROW_VERSION) from PyPI into $(PYENV)"
	@python3 -m venv $(PYENV) && $(PYENV)/bin/pip install --quiet --disable-pip-version-check pyarrow==$(PYARROW_VERSION)
	@touch $@

# The readers the inference table's tests open it with, as users do, with no options:
# pandas and DuckDB (beside pyarrow), in the same environment.
PANDAS_VERSION := 2.3.3
DUCKDB_VERSION := 1.5.6
$(PYENV)/.readers-$(PANDAS_VERSION)-$(DUCKDB_VERSION): $(PYENV)/.pyarrow-$(PYARROW_VERSION)
	@echo "installing pandas $(PANDAS_VERSION) and duckdb $(DUCKDB_VERSION) from PyPI into $(PYENV)"
	@$(PYENV)/bin/pip install --quiet --disable-pip-version-check "pandas==$(PANDAS_VERSION)" "duckdb==$(DUCKDB_VERSION)"
	@touch $@

pyarrow: $(PYENV)/.pyarrow-$(PYARROW_VERSION) $(PYENV)/.readers-$(PANDAS_VERSION)-$(DUCKDB_VERSION)

# Spark (pyspark from PyPI, which bundles its jars; it runs on the JDK 17 the tests
# already need), the fourth reader the inference table's tests open it with.
PYSPARK_VERSION := 4.0.1
SPARKENV        := $(CURDIR)/.cache/sparkenv
export TEST_SPARK_PYTHON := $(SPARKENV)/bin/python
$(SPARKENV)/.pyspark-$(PYSPARK_VERSION):
	@echo "installing pyspark $(PYSPARK_VERSION) from PyPI into $(SPARKENV)"
	@python3 -m venv $(SPARKENV) && $(SPARKENV)/bin/pip install --quiet --disable-pip-version-check "pyspark==$(PYSPARK_VERSION)"
	@touch $@

spark: $(SPARKENV)/.pyspark-$(PYSPARK_VERSION)

# The stock clients users call mlgate with, unmodified, from PyPI, into the same
# environment: tritonclient (HTTP and gRPC) and KServe's. Both define the protobuf
# messages of package inference, so a test runs each in a process of its own.
TRITONCLIENT_VERSION := 2.73.0
KSERVE_VERSION       := 0.21.0
$(PYENV)/.clients-$(TRITONCLIENT_VERSION)-$(KSERVE_VERSION): $(PYENV)/.pyarrow-$(PYARROW_VERSION)
	@echo "installing tritonclient $(TRITONCLIENT_VERSION) and kserve $(KSERVE_VERSION) from PyPI into $(PYENV)"
	@$(PYENV)/bin/pip install --quiet --disable-pip-version-check "tritonclient[http,grpc]==$(TRITONCLIENT_VERSION)" "kserve==$(KSERVE_VERSION)"
	@touch $@

pyclients: $(PYENV)/.clients-$(TRITONCLIENT_VERSION)-$(KSERVE_VERSION)

# Feast (feast[redis] from PyPI) for the tests of featurestore/feast, which have
# Feast materialize into the test Redis and compare its get_online_features with
# mlgate's reads. It pins its own numpy, pandas and protobuf, so it has an
# environment of its own.
FEAST_VERSION := 0.67.0
FEASTENV      := $(CURDIR)/.cache/feastenv
export TEST_FEAST_PYTHON := $(FEASTENV)/bin/python
$(FEASTENV)/.feast-$(FEAST_VERSION):
	@echo "installing feast[redis] $(FEAST_VERSION) from PyPI into $(FEASTENV)"
	@python3 -m venv $(FEASTENV) && $(FEASTENV)/bin/pip install --quiet --disable-pip-version-check "feast[redis]==$(FEAST_VERSION)"
	@touch $@

feast: $(FEASTENV)/.feast-$(FEAST_VERSION)

# MLflow (with onnx and onnxruntime, which mlflow.onnx.log_model needs) for the
# tests of registry/mlflow, which run a real tracking server on loopback and
# have a Python script log and register models in it; an environment of its own.
MLFLOW_VERSION      := 3.17.2
MLFLOW_ONNX_VERSION := 1.23.2
MLFLOW_ORT_VERSION  := 1.32.0
MLFLOWENV           := $(CURDIR)/.cache/mlflowenv
export TEST_MLFLOW_PYTHON := $(MLFLOWENV)/bin/python
$(MLFLOWENV)/.mlflow-$(MLFLOW_VERSION):
	@echo "installing mlflow $(MLFLOW_VERSION) from PyPI into $(MLFLOWENV)"
	@python3 -m venv $(MLFLOWENV) && $(MLFLOWENV)/bin/pip install --quiet --disable-pip-version-check \
		"mlflow==$(MLFLOW_VERSION)" "onnx==$(MLFLOW_ONNX_VERSION)" "onnxruntime==$(MLFLOW_ORT_VERSION)"
	@touch $@

mlflow: $(MLFLOWENV)/.mlflow-$(MLFLOW_VERSION)

# promtool (Debian's prometheus package, installed when it is not on PATH), which the
# tests run as `promtool check metrics` on a scrape of /metrics.
export TEST_PROMTOOL ?= promtool
promtool:
	@bash deploy/promtool.sh >/dev/null

# A headless Chromium (Debian's chromium, installed when none is on PATH), which the
# console's tests drive over the DevTools protocol.
export TEST_CHROMIUM ?= chromium
chromium:
	@bash deploy/chromium.sh >/dev/null

test: onnxruntime lint pyarrow spark pyclients feast mlflow promtool chromium
	bash deploy/with-services.sh $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

services-up:
	bash deploy/redis.sh start
	bash deploy/cassandra.sh start
	bash deploy/postgres.sh start
	bash deploy/redis-cluster.sh start

services-down:
	@rc=0; for s in redis cassandra postgres redis-cluster; do bash deploy/$$s.sh stop || rc=1; done; exit $$rc

# Every scenario of bench/ (see bench/RESULTS.md); the predict ones read features from a
# Redis that bench/with-redis.sh runs for the benchmark alone, on 127.0.0.1:16390
# (BENCH_REDIS_PORT). BENCH_FLAGS adds flags, e.g. BENCH_FLAGS='-out bench/RESULTS.md'.
bench: build
	bash bench/with-redis.sh $(GO) run ./bench -scenario all $(BENCH_FLAGS)

# Every native fuzz test, one after another, FUZZTIME (10m) each: `go test -list` finds
# them, so a new one is included. FUZZ=FuzzCSV runs only the ones whose name matches.
FUZZTIME ?= 10m
FUZZ ?= .
fuzz: onnxruntime
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' | grep -E -- '$(FUZZ)' || true); do \
			echo "== $$f in $$pkg for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

# The Go code of the V2 gRPC service (proto/inference/*.proto), committed so that
# building and testing need no protoc. `make proto` regenerates it: protoc comes from
# Debian's protobuf-compiler (installed with apt-get when missing), the two Go plugins
# at pinned versions into .cache/protoc-gen. The .sha256 beside the code records the
# .proto it came from; a test fails when the two disagree.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_BIN   := $(CURDIR)/.cache/protoc-gen/go-$(PROTOC_GEN_GO_VERSION)-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
PROTO_FILES := proto/inference/grpc_service.proto
PROTO_OUT   := serving/grpcv2/inferencepb

$(PROTO_BIN)/protoc-gen-go:
	GOBIN=$(PROTO_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTO_BIN)/protoc-gen-go-grpc:
	GOBIN=$(PROTO_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: $(PROTO_BIN)/protoc-gen-go $(PROTO_BIN)/protoc-gen-go-grpc
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	PATH="$(PROTO_BIN):$$PATH" protoc -I proto \
		--go_out=. --go_opt=module=github.com/mlgate/mlgate \
		--go-grpc_out=. --go-grpc_opt=module=github.com/mlgate/mlgate \
		$(PROTO_FILES)
	sha256sum $(PROTO_FILES) > $(PROTO_OUT)/proto.sha256

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
