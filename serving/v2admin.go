package serving

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/serving/onnx"
)

// What the stock Triton and KServe clients ask of a server beyond
// inference: a model's configuration (tritonclient's get_model_config), its
// statistics (the statistics extension) and the repository's index (the
// model repository extension), each in the shape those clients read.

// modelConfig is a version's configuration as Triton's model configuration
// JSON has it. A version without batching runs one request per ONNX Runtime
// call: max_batch_size is 0 and the dimensions include the batch dimension
// (-1 where it is dynamic), as Triton writes a model that does not batch. A
// version served with dynamic batching has its max_batch_size and
// dynamic_batching, and, by Triton's rule for a model that batches,
// dimensions without the batch dimension (which every one of its inputs and
// outputs has); a tensor of the batch dimension alone is written [1],
// reshaped to [], as Triton writes it.
type modelConfig struct {
	Name            string           `json:"name"`
	Platform        string           `json:"platform"`
	Backend         string           `json:"backend"`
	MaxBatchSize    int              `json:"max_batch_size"`
	Input           []configTensor   `json:"input"`
	Output          []configTensor   `json:"output"`
	DynamicBatching *dynamicBatching `json:"dynamic_batching,omitempty"`
}

type configTensor struct {
	Name     string         `json:"name"`
	DataType string         `json:"data_type"`
	Dims     []int64        `json:"dims"`
	Reshape  *configReshape `json:"reshape,omitempty"`
}

type configReshape struct {
	Shape []int64 `json:"shape"`
}

type dynamicBatching struct {
	MaxQueueDelayMicroseconds int64 `json:"max_queue_delay_microseconds"`
}

// configDataType is the model configuration's name of a V2 datatype:
// TYPE_ and the datatype, but TYPE_STRING for BYTES, and for JSON (a
// ZipMap's maps), which Triton's configuration has no type for and which
// gRPC answers as BYTES.
func configDataType(v2 string) string {
	if v2 == "BYTES" || v2 == "JSON" {
		return "TYPE_STRING"
	}
	return "TYPE_" + v2
}

// configTensors describes ios, without their batch dimension when batched.
func configTensors(ios []onnx.IO, batched bool) []configTensor {
	out := make([]configTensor, len(ios))
	for i, io := range ios {
		out[i] = configTensor{Name: io.Name, DataType: configDataType(io.Type.String()), Dims: io.Shape}
		if batched && len(io.Shape) > 0 {
			out[i].Dims = io.Shape[1:]
			if len(out[i].Dims) == 0 {
				out[i].Dims, out[i].Reshape = []int64{1}, &configReshape{Shape: []int64{}}
			}
		}
	}
	return out
}

// modelConfigOf answers GET /v2/models/{m}[/versions/{v}]/config.
func (s *Server) modelConfigOf(c *fiber.Ctx) error {
	cfg, err := s.configOf(c.Params("model"), c.Params("version"))
	if err != nil {
		return err
	}
	return c.JSON(cfg)
}

// configOf is the configuration of model at version (a number, an alias
// or "").
func (s *Server) configOf(model, version string) (modelConfig, error) {
	l, err := s.acquire(model, version)
	if err != nil {
		return modelConfig{}, err
	}
	defer l.Release()
	batched := l.batcher != nil
	cfg := modelConfig{
		Name: l.Version.Name, Platform: platform, Backend: "onnxruntime",
		Input: configTensors(l.Inputs(), batched), Output: configTensors(l.Outputs(), batched),
	}
	if batched {
		cfg.MaxBatchSize = l.Version.Batching.MaxBatchSize
		cfg.DynamicBatching = &dynamicBatching{MaxQueueDelayMicroseconds: time.Duration(l.Version.Batching.MaxQueueDelay).Microseconds()}
	}
	return cfg, nil
}

// modelStatistics answers GET /v2/models/stats, /v2/models/{m}/stats and
// /v2/models/{m}/versions/{v}/stats: each loaded version's counts since it
// loaded.
func (s *Server) modelStatistics(c *fiber.Ctx) error {
	st, err := s.statistics(c.Params("model"), c.Params("version"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"model_stats": st})
}

// statistics are the counts of model at version, or of each loaded
// version of model when version is "" (of every model when model is "").
func (s *Server) statistics(model, version string) ([]modelStats, error) {
	if !s.catalog.Ready() {
		return nil, notReady("the server is still loading models")
	}
	if version != "" {
		l, err := s.catalog.Acquire(model, version)
		if err != nil {
			return nil, err
		}
		defer l.Release()
		return []modelStats{statsOf(l)}, nil
	}
	entries, err := s.catalog.Entries(model)
	if err != nil {
		return nil, err
	}
	out := []modelStats{}
	for _, e := range entries {
		if e.Loaded != nil {
			out = append(out, statsOf(e.Loaded))
		}
	}
	return out, nil
}

func statsOf(l *Loaded) modelStats {
	st, inferences, executions, last := l.stats.read()
	return modelStats{
		Name: l.Version.Name, Version: strconv.Itoa(l.Version.Version), LastInference: last,
		InferenceCount: inferences, ExecutionCount: executions, InferenceStats: st, BatchStats: []struct{}{},
	}
}

// repositoryModel is one version in the repository index.
type repositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// repositoryIndex answers POST /v2/repository/index: every registered
// version, READY when loaded here, UNAVAILABLE with the reason when not;
// with {"ready": true}, the ready ones only.
func (s *Server) repositoryIndex(c *fiber.Ctx) error {
	var req struct {
		RepositoryName string `json:"repository_name"`
		Ready          bool   `json:"ready"`
	}
	if body := c.Body(); len(body) > 0 {
		if err := jsonerr.Decode(body, &req); err != nil {
			return invalidInput("request body: %v", err)
		}
	}
	out, err := s.index(req.Ready)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// index lists every registered version, READY when loaded here and
// UNAVAILABLE with the reason when not, or only the ready ones.
func (s *Server) index(readyOnly bool) ([]repositoryModel, error) {
	if !s.catalog.Ready() {
		return nil, notReady("the server is still loading models")
	}
	entries, err := s.catalog.Entries("")
	if err != nil {
		return nil, err
	}
	out := []repositoryModel{}
	for _, e := range entries {
		m := repositoryModel{Name: e.Model, Version: strconv.Itoa(e.Version), State: "READY"}
		if e.Loaded == nil {
			if readyOnly {
				continue
			}
			m.State, m.Reason = "UNAVAILABLE", s.hidePaths(e.Err.Error())
		}
		out = append(out, m)
	}
	return out, nil
}
