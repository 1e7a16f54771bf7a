package main

// The v2 scenario: a KServe V2 inference request for the modelzoo's linear
// model, its inputs in the request.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

const (
	modelName = "linear"
	inferPath = "/v2/models/" + modelName + "/infer"
	// v2Goal: mlgate ≥ v2Goal × the floor's throughput (issue 11).
	v2Goal = 0.9
)

func startV2(cfg options) (*scenario, error) {
	modelPath := modelzoo.Path(modelzoo.Linear)
	floor, err := startFloor(modelPath)
	if err != nil {
		return nil, fmt.Errorf("start the floor: %w", err)
	}
	gateway, err := startLinearGateway(modelPath)
	if err != nil {
		floor.close()
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	body, want := request(cfg.rows)
	sc := &scenario{
		name:    "v2",
		heading: fmt.Sprintf("v2: %d workers, %d row(s) per request", cfg.concurrency, cfg.rows),
		targets: []*target{{name: "floor", srv: floor}, {name: "mlgate", srv: gateway}},
		load:    load{path: inferPath, bodies: [][]byte{body}, warmup: cfg.warmup, measure: cfg.duration},
		phases:  []*phase{{workers: cfg.concurrency, minRatio: v2Goal}},
		close:   func() { gateway.close(); floor.close() },
	}
	for _, t := range sc.targets {
		if err := check(t.srv.addr, body, want); err != nil {
			sc.close()
			return nil, fmt.Errorf("%s answers wrongly, not benchmarking it: %w", t.name, err)
		}
	}
	return sc, nil
}

// startLinearGateway starts mlgate and registers modelPath as model "linear",
// validated, with alias champion through the HTTP API.
func startLinearGateway(modelPath string) (*server, error) {
	return startLinearGatewayWith(modelPath, nil)
}

// startLinearGatewayWith is startLinearGateway on the default configuration
// changed by configure (when not nil).
func startLinearGatewayWith(modelPath string, configure func(*config.Config)) (*server, error) {
	s, err := startGateway(configure)
	if err != nil {
		return nil, err
	}
	// Validated, as champion requires (registry.protected_aliases).
	err = register(s.addr, modelName, modelPath, `{"tags": {"validation_status": "PASSED"}}`)
	if err == nil {
		err = call(http.MethodPut, "http://"+s.addr+"/v1/models/"+modelName+"/aliases/champion", "application/json", strings.NewReader(`{"version":1}`))
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("register the model through the API: %w", err)
	}
	return s, nil
}

// request returns the body of a request for rows rows, each [1,2,3,4], and
// the linear model's answer: y = x·W + b, [4,10] for each row.
func request(rows int) ([]byte, []float32) {
	b := []byte(`{"inputs":[{"name":"x","shape":[`)
	b = strconv.AppendInt(b, int64(rows), 10)
	b = append(b, `,4],"datatype":"FP32","data":[`...)
	want := make([]float32, 0, 2*rows)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "1,2,3,4"...)
		want = append(want, 4, 10)
	}
	return append(b, "]}]}"...), want
}

// check sends the request once and compares the answer with want.
func check(addr string, body []byte, want []float32) error {
	answer, err := post(addr, inferPath, body)
	if err != nil {
		return err
	}
	var got floorResponse
	if err := json.Unmarshal(answer, &got); err != nil {
		return fmt.Errorf("%w: %s", err, answer)
	}
	if len(got.Outputs) != 1 || got.Outputs[0].Name != "y" || fmt.Sprint(got.Outputs[0].Data) != fmt.Sprint(want) {
		return errors.New("unexpected answer: " + string(answer))
	}
	return nil
}
