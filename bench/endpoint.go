package main

// The endpoint-predict scenario: what an endpoint's traffic policy costs. One
// mlgate serves the modelzoo's linear model both directly, POST
// /v1/models/linear/predict ("model-predict", the reference), and through an
// endpoint whose two variants are that same version, POST
// /v1/endpoints/churn/predict ("endpoint-predict"), with a unit in every
// request so that the sticky hash runs each time.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mlgate/mlgate/internal/modelzoo"
)

const (
	endpointName   = "churn"
	endpointPath   = "/v1/endpoints/" + endpointName + "/predict"
	modelPredict   = "/v1/models/" + modelName + "/predict"
	endpointPolicy = `{"variants": [{"name": "control", "model": "linear/1", "weight": 90}, {"name": "treatment", "model": "linear/1", "weight": 10}], "sticky": {"entity": "user_id"}}`
	// endpointUnits is how many units (user ids) the endpoint's requests
	// rotate through.
	endpointUnits = 10000
	// endpointGoal: routing costs at most 3% of throughput (issue 11).
	endpointGoal = 0.97
	rawInputs    = `"inputs":{"x":[[1,2,3,4]]}`
	// linearAnswer is the linear model's output for one row [1,2,3,4].
	linearAnswer = "map[y:[[4 10]]]"
)

func startEndpoint(cfg options) (*scenario, error) {
	gateway, err := startLinearGateway(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	bodies, split, err := setupEndpoint(gateway.addr)
	if err != nil {
		gateway.close()
		return nil, err
	}
	direct := load{path: modelPredict, bodies: [][]byte{[]byte("{" + rawInputs + "}")}, warmup: cfg.warmup, measure: cfg.duration}
	routed := load{path: endpointPath, bodies: bodies, warmup: cfg.warmup, measure: cfg.duration}
	return &scenario{
		name:    "endpoint-predict",
		heading: fmt.Sprintf("endpoint-predict: %d workers, endpoint routing against model predict", cfg.concurrency),
		bullets: []string{
			"Targets: one mlgate; **model-predict** is `POST " + modelPredict + "` with `{" + rawInputs + "}`, **endpoint-predict** is `POST " + endpointPath +
				"` with the same body plus `\"unit\": \"u<i>\"`, the units u0…u" + strconv.Itoa(endpointUnits-1) + " in turn, so that every request hashes its unit into the weights",
			"Endpoint: `PUT /v1/endpoints/" + endpointName + "` " + "`" + endpointPolicy + "`: both variants are version 1 of the model model-predict runs",
			"Checked before the load: every endpoint-predict body and the model-predict body answered `{\"y\": [[4, 10]]}` from linear version 1; the endpoint chose " + split,
		},
		targets: []*target{{name: "model-predict", srv: gateway, load: &direct}, {name: "endpoint-predict", srv: gateway, load: &routed}},
		load:    direct,
		phases:  []*phase{{workers: cfg.concurrency, minRatio: endpointGoal}},
		close:   gateway.close,
	}, nil
}

// setupEndpoint creates the endpoint through the API, and checks that the
// model and every endpoint request answer the model's output. It returns the
// endpoint's bodies and how the units split between the variants.
func setupEndpoint(addr string) ([][]byte, string, error) {
	if err := call(http.MethodPut, "http://"+addr+"/v1/endpoints/"+endpointName, "application/json", strings.NewReader(endpointPolicy)); err != nil {
		return nil, "", fmt.Errorf("create the endpoint through the API: %w", err)
	}
	if _, err := checkPredictAnswer(addr, modelPredict, []byte("{"+rawInputs+"}")); err != nil {
		return nil, "", fmt.Errorf("model-predict answers wrongly, not benchmarking it: %w", err)
	}
	bodies := make([][]byte, endpointUnits)
	variants := map[string]int{}
	for i := range bodies {
		bodies[i] = []byte(`{"unit":"u` + strconv.Itoa(i) + `",` + rawInputs + "}")
		variant, err := checkPredictAnswer(addr, endpointPath, bodies[i])
		if err != nil {
			return nil, "", fmt.Errorf("endpoint-predict answers wrongly, not benchmarking it: %w", err)
		}
		variants[variant]++
	}
	if len(variants) != 2 {
		return nil, "", fmt.Errorf("endpoint-predict: %d units went to %v, want both variants", endpointUnits, variants)
	}
	return bodies, fmt.Sprintf("control for %d and treatment for %d of the %d units", variants["control"], variants["treatment"], endpointUnits), nil
}

// checkPredictAnswer sends body to path once, checks that the answer is
// linear version 1's output for [1,2,3,4], and returns the variant it names.
func checkPredictAnswer(addr, path string, body []byte) (string, error) {
	answer, err := post(addr, path, body)
	if err != nil {
		return "", err
	}
	var got struct {
		Variant string `json:"variant"`
		Model   struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
		} `json:"model"`
		Outputs map[string][][]float32 `json:"outputs"`
	}
	if err := json.Unmarshal(answer, &got); err != nil {
		return "", fmt.Errorf("%w: %s", err, answer)
	}
	if got.Model.Name != modelName || got.Model.Version != 1 || fmt.Sprint(got.Outputs) != linearAnswer {
		return "", fmt.Errorf("unexpected answer to %s: %s", body, answer)
	}
	return got.Variant, nil
}
