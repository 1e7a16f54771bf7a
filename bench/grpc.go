package main

// The gRPC scenarios (issue 13):
//
//   - grpc: mlgate's ModelInfer (KServe V2 over gRPC) for the linear model,
//     raw contents, against a bare grpc-go server running the same model;
//   - batch100: a 100-row FP32 batch to one mlgate as V2 JSON over HTTP, as
//     binary HTTP (the binary tensor extension) and as gRPC;
//   - batching: the modelzoo's heaviest model at 32 callers of one row each,
//     a version without dynamic batching against one with it.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// configNote says how the scenarios' mlgate is configured.
func configNote(cfg options) string {
	if !cfg.tables {
		return "mlgate: its default configuration as `mlgate serve` has it, plus `grpc.listen`, **but the inference tables off** (-tables=false, a control); each call gets server.request_timeout's deadline"
	}
	return "mlgate: its default configuration as `mlgate serve` has it (plus `grpc.listen`), so the inference tables are on (every request and answer recorded, encoded as JSON) and each call gets server.request_timeout's deadline"
}

const (
	// grpcGoal: mlgate's ModelInfer ≥ grpcGoal × the gRPC floor's
	// throughput (issue 13).
	grpcGoal = 0.9
	// batch100Rows is the batch scenario's rows per request.
	batch100Rows = 100
	// batchingGoal: batched ≥ batchingGoal × unbatched's throughput
	// (issue 13).
	batchingGoal = 2.0
	// batchingWorkers is the batching scenario's concurrent callers.
	batchingWorkers = 32
	// heavyModel is the batching scenario's model: the modelzoo's heaviest,
	// x FP32 [batch,heavyWidth] → y FP32 [batch,8].
	heavyModel = modelzoo.MLPHeavy
	heavyName  = "heavy"
	heavyWidth = 256
)

// withGRPC has mlgate serve gRPC on a loopback port too, and turns its
// inference tables off unless cfg.tables.
func withGRPC(cfg options) func(*config.Config) {
	return func(c *config.Config) {
		c.GRPC.Listen = "127.0.0.1:0"
		if !cfg.tables {
			c.Tables.Enabled = false
		}
	}
}

// linearRows returns rows rows of [1,2,3,4] and the linear model's answer,
// [4,10] for each.
func linearRows(rows int) (x, want []float32) {
	for range rows {
		x = append(x, 1, 2, 3, 4)
		want = append(want, 4, 10)
	}
	return x, want
}

// grpcRequest returns a ModelInferRequest of x, shaped [rows,width], for
// input "x" of model (and version, "" for the server's choice), in raw
// contents.
func grpcRequest(model, version string, x []float32, width int) *pb.ModelInferRequest {
	return &pb.ModelInferRequest{
		ModelName:        model,
		ModelVersion:     version,
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{int64(len(x) / width), int64(width)}}},
		RawInputContents: [][]byte{float32Bytes(x)},
	}
}

// float32Bytes returns x little-endian.
func float32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// bytesFloat32 reads little-endian FP32 values.
func bytesFloat32(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes are not FP32 values", len(b))
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x, nil
}

// inferGRPC calls ModelInfer once at addr and returns the first output
// (raw or typed contents) and its shape.
func inferGRPC(addr string, req *pb.ModelInferRequest) ([]float32, []int64, error) {
	conn, err := dialGRPC(addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "y" || resp.Outputs[0].Datatype != "FP32" {
		return nil, nil, fmt.Errorf("unexpected outputs: %v", resp)
	}
	if len(resp.RawOutputContents) == 1 {
		y, err := bytesFloat32(resp.RawOutputContents[0])
		return y, resp.Outputs[0].Shape, err
	}
	if c := resp.Outputs[0].Contents; c != nil {
		return c.Fp32Contents, resp.Outputs[0].Shape, nil
	}
	return nil, nil, fmt.Errorf("an answer without contents: %v", resp)
}

// checkGRPC calls ModelInfer once and compares the output with want.
func checkGRPC(addr string, req *pb.ModelInferRequest, want []float32) error {
	y, _, err := inferGRPC(addr, req)
	if err != nil {
		return err
	}
	if !near(y, want) {
		return fmt.Errorf("output %v, want %v", y, want)
	}
	return nil
}

// grpcFloor is the least a gRPC server of the V2 protocol must do for the
// benchmark's request: grpc-go decodes the message, the handler makes a
// tensor of the raw input, runs the model and answers the output raw. It
// implements ModelInfer alone, knows the model's input and output names, and
// checks nothing beyond what keeps it from crashing.
type grpcFloor struct {
	pb.UnimplementedGRPCInferenceServiceServer
	sess  *ort.DynamicAdvancedSession
	width int64
}

func (f *grpcFloor) ModelInfer(_ context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	if len(req.Inputs) != 1 || len(req.RawInputContents) != 1 {
		return nil, status.Error(codes.InvalidArgument, `want one input, "x", in raw contents`)
	}
	x, err := bytesFloat32(req.RawInputContents[0])
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := runFloor(f.sess, f.width, req.Inputs[0].Shape, x)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.ModelInferResponse{
		ModelName:         req.ModelName,
		ModelVersion:      "1",
		Id:                req.Id,
		Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: out.Name, Datatype: out.Datatype, Shape: out.Shape}},
		RawOutputContents: [][]byte{float32Bytes(out.Data)},
	}, nil
}

// startGRPCFloor serves modelPath (input "x" [batch,width], output "y", both
// FP32) on a bare grpc-go server with the same session options as mlgate,
// and the transport tuning mlgate's gRPC server has (stream workers, see
// internal/gateway), so that the ratio measures what mlgate does per call,
// not an option either could set.
func startGRPCFloor(modelPath string, width int64) (*server, error) {
	sess, err := newFloorSession(modelPath)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sess.Destroy()
		return nil, err
	}
	s := grpc.NewServer(grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))))
	pb.RegisterGRPCInferenceServiceServer(s, &grpcFloor{sess: sess, width: width})
	go s.Serve(ln)
	return &server{grpcAddr: ln.Addr().String(), close: func() {
		s.Stop()
		sess.Destroy()
	}}, nil
}

func startGRPC(cfg options) (*scenario, error) {
	modelPath := modelzoo.Path(modelzoo.Linear)
	floor, err := startGRPCFloor(modelPath, 4)
	if err != nil {
		return nil, fmt.Errorf("start the floor: %w", err)
	}
	gateway, err := startLinearGatewayWith(modelPath, withGRPC(cfg))
	if err != nil {
		floor.close()
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	x, want := linearRows(cfg.rows)
	req := grpcRequest(modelName, "", x, 4)
	gl := &grpcLoad{requests: []*pb.ModelInferRequest{req}, conns: cfg.grpcConns}
	sc := &scenario{
		name:    "grpc",
		heading: fmt.Sprintf("grpc: %d workers, %d row(s) per request, ModelInfer against a bare grpc-go floor", cfg.concurrency, cfg.rows),
		bullets: []string{
			"Targets: **floor**, a bare grpc-go server (default options but mlgate's stream workers) implementing only ModelInfer, which runs a pre-loaded ONNX Runtime session of `linear.onnx` and answers raw_output_contents; **mlgate**'s inference.GRPCInferenceService/ModelInfer (`grpc.listen`), model `linear` with no version given",
			"Requests: input x FP32 [" + strconv.Itoa(cfg.rows) + ",4] in raw_input_contents; both answered y in raw_output_contents, checked before the load",
			"Generator: grpc-go client, " + grpcConnsText(cfg.grpcConns, cfg.concurrency) + ", no deadline on the calls",
			configNote(cfg),
		},
		targets: []*target{{name: "floor", srv: floor}, {name: "mlgate", srv: gateway}},
		load:    load{grpc: gl, warmup: cfg.warmup, measure: cfg.duration},
		phases:  []*phase{{workers: cfg.concurrency, minRatio: grpcGoal}},
		rows:    cfg.rows,
		close:   func() { gateway.close(); floor.close() },
	}
	for _, t := range sc.targets {
		if err := checkGRPC(t.srv.grpcAddr, req, want); err != nil {
			sc.close()
			return nil, fmt.Errorf("%s answers wrongly, not benchmarking it: %w", t.name, err)
		}
	}
	return sc, nil
}

func grpcConnsText(conns, workers int) string {
	if conns <= 0 || conns >= workers {
		return "one connection per worker"
	}
	if conns == 1 {
		return "one connection shared by the workers"
	}
	return fmt.Sprintf("%d connections shared by the workers in turn", conns)
}

// binaryRequest returns a V2 request of x, shaped [rows,width], with its
// data in binary after the JSON and output y asked in binary, and the
// length of its JSON (Inference-Header-Content-Length).
func binaryRequest(x []float32, width int) ([]byte, int) {
	raw := float32Bytes(x)
	head := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d,%d],"datatype":"FP32","parameters":{"binary_data_size":%d}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`,
		len(x)/width, width, len(raw))
	return append([]byte(head), raw...), len(head)
}

// checkBinary sends the binary request l once and compares output y, in
// binary after the answer's JSON, with want.
func checkBinary(addr string, l load, want []float32) error {
	req, resp := l.newPost(addr, l.bodies[0]), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		return err
	}
	body := resp.Body()
	if resp.StatusCode() != fasthttp.StatusOK {
		return &statusError{resp.StatusCode(), string(body)}
	}
	n, err := strconv.Atoi(string(resp.Header.Peek(l.header[0])))
	if err != nil || n > len(body) {
		return fmt.Errorf("answer without a valid %s (%q): %s", l.header[0], resp.Header.Peek(l.header[0]), body)
	}
	var head struct {
		Outputs []struct {
			Name       string  `json:"name"`
			Shape      []int64 `json:"shape"`
			Parameters struct {
				Size int `json:"binary_data_size"`
			} `json:"parameters"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body[:n], &head); err != nil {
		return fmt.Errorf("%w: %s", err, body[:n])
	}
	if len(head.Outputs) != 1 || head.Outputs[0].Name != "y" || head.Outputs[0].Parameters.Size != len(body)-n {
		return fmt.Errorf("unexpected answer: %s + %d bytes", body[:n], len(body)-n)
	}
	y, err := bytesFloat32(body[n:])
	if err != nil {
		return err
	}
	if !near(y, want) {
		return fmt.Errorf("output %.300v, want %.300v", y, want)
	}
	return nil
}

// featureRows returns rows rows of 4 FP32 values in (-1,1) with all their
// digits, as real features would be (not [1,2,3,4], whose JSON is shorter
// than any binary form), the V2 JSON request of them, and the linear
// model's answer, computed here: y = x·W + b.
func featureRows(rows int) (x []float32, body []byte, want []float32) {
	w := [4][2]float64{{1, -1}, {2, 0.5}, {-0.5, 1}, {0, 2}}
	bias := [2]float64{0.5, -1}
	state := uint32(2463534242)
	body = fmt.Appendf(nil, `{"inputs":[{"name":"x","shape":[%d,4],"datatype":"FP32","data":[`, rows)
	for r := range rows {
		y := bias
		for j := range 4 {
			state ^= state << 13
			state ^= state >> 17
			state ^= state << 5 // xorshift32
			v := float32(int32(state)) / (1 << 31)
			x = append(x, v)
			if r > 0 || j > 0 {
				body = append(body, ',')
			}
			body = strconv.AppendFloat(body, float64(v), 'g', -1, 32)
			for k := range 2 {
				y[k] += float64(v) * w[j][k]
			}
		}
		want = append(want, float32(y[0]), float32(y[1]))
	}
	return x, append(body, "]}]}"...), want
}

// near says whether got is want within 1e-5 each (float32 rounding of
// a few products).
func near(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			return false
		}
	}
	return true
}

// checkJSONNear sends the V2 JSON request once and compares output y with
// want, within near's tolerance.
func checkJSONNear(addr string, body []byte, want []float32) error {
	answer, err := post(addr, inferPath, body)
	if err != nil {
		return err
	}
	var got floorResponse
	if err := json.Unmarshal(answer, &got); err != nil {
		return fmt.Errorf("%w: %s", err, answer)
	}
	if len(got.Outputs) != 1 || got.Outputs[0].Name != "y" || !near(got.Outputs[0].Data, want) {
		return fmt.Errorf("unexpected answer: %.300s", answer)
	}
	return nil
}

func startBatch100(cfg options) (*scenario, error) {
	gateway, err := startLinearGatewayWith(modelzoo.Path(modelzoo.Linear), withGRPC(cfg))
	if err != nil {
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	x, jsonBody, want := featureRows(batch100Rows)
	binBody, headLen := binaryRequest(x, 4)
	jsonLoad := load{path: inferPath, bodies: [][]byte{jsonBody}, warmup: cfg.warmup, measure: cfg.duration}
	binLoad := load{path: inferPath, bodies: [][]byte{binBody}, contentType: "application/octet-stream",
		header: [2]string{"Inference-Header-Content-Length", strconv.Itoa(headLen)}, warmup: cfg.warmup, measure: cfg.duration}
	req := grpcRequest(modelName, "", x, 4)
	grpcLoad := load{grpc: &grpcLoad{requests: []*pb.ModelInferRequest{req}, conns: cfg.grpcConns}, warmup: cfg.warmup, measure: cfg.duration}
	sc := &scenario{
		name:    "batch100",
		heading: fmt.Sprintf("batch100: %d workers, a %d-row FP32 batch as V2 JSON, binary HTTP and gRPC", cfg.concurrency, batch100Rows),
		bullets: []string{
			"Targets: one mlgate (`grpc.listen` on), model `linear`, the same x FP32 [100,4] in each request, 400 pseudo-random values in (-1,1) with all their digits (as features would be; the JSON writes each in its shortest exact form): **json** is `POST " + inferPath + "` with the data in JSON; **binary** is the same route with the binary tensor extension (`Inference-Header-Content-Length`, the data raw after the JSON, output y asked in binary); **grpc** is ModelInfer with raw_input_contents (answered in raw_output_contents)",
			"Checked before the load: each answered y = x·W + b for the 100 rows (as computed in Go, within 1e-5)",
			"gRPC generator: grpc-go client, " + grpcConnsText(cfg.grpcConns, cfg.concurrency) + "; HTTP generator: fasthttp",
			configNote(cfg),
		},
		targets: []*target{{name: "json", srv: gateway, load: &jsonLoad}, {name: "binary", srv: gateway, load: &binLoad}, {name: "grpc", srv: gateway, load: &grpcLoad}},
		load:    jsonLoad,
		phases:  []*phase{{workers: cfg.concurrency}},
		rows:    batch100Rows,
		close:   gateway.close,
	}
	err = checkJSONNear(gateway.addr, jsonBody, want)
	if err == nil {
		err = checkBinary(gateway.addr, binLoad, want)
	}
	if err == nil {
		err = checkGRPC(gateway.grpcAddr, req, want)
	}
	if err != nil {
		sc.close()
		return nil, fmt.Errorf("mlgate answers wrongly, not benchmarking it: %w", err)
	}
	return sc, nil
}

// heavyRow is the batching scenario's row: heavyWidth values in [-1,1].
func heavyRow() []float32 {
	x := make([]float32, heavyWidth)
	for i := range x {
		x[i] = float32((i*7)%13-6) / 6
	}
	return x
}

func startBatching(cfg options) (*scenario, error) {
	gateway, err := startGateway(withGRPC(cfg))
	if err != nil {
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	modelPath := modelzoo.Path(heavyModel)
	// batchingMetadata turns dynamic batching on for version 2.
	batchingMetadata := fmt.Sprintf(`{"batching": {"max_batch_size": %d, "max_queue_delay": %q}}`, batchingWorkers, cfg.batchingDelay.String())
	if err := register(gateway.addr, heavyName, modelPath, ""); err != nil {
		gateway.close()
		return nil, fmt.Errorf("register %s as version 1 (unbatched): %w", heavyModel, err)
	}
	if err := register(gateway.addr, heavyName, modelPath, batchingMetadata); err != nil {
		gateway.close()
		return nil, fmt.Errorf("register %s as version 2 with metadata %s (does this mlgate have dynamic batching?): %w", heavyModel, batchingMetadata, err)
	}
	x := heavyRow()
	unbatched := grpcRequest(heavyName, "1", x, heavyWidth)
	batched := grpcRequest(heavyName, "2", x, heavyWidth)
	conns := cfg.grpcConns
	lu := load{grpc: &grpcLoad{requests: []*pb.ModelInferRequest{unbatched}, conns: conns}, warmup: cfg.warmup, measure: cfg.duration}
	lb := load{grpc: &grpcLoad{requests: []*pb.ModelInferRequest{batched}, conns: conns}, warmup: cfg.warmup, measure: cfg.duration}
	sc := &scenario{
		name:    "batching",
		heading: fmt.Sprintf("batching: %d callers of 1 row each, %s with dynamic batching against without", batchingWorkers, heavyModel),
		bullets: []string{
			"Targets: one mlgate (`grpc.listen` on) serving the modelzoo's `" + heavyModel + "` (x FP32 [batch,256] → y FP32 [batch,8]) as model `" + heavyName + "` twice: version 1 registered without metadata (**unbatched**, the reference) and version 2 with metadata `" + batchingMetadata + "` (**batched**)",
			"Requests: ModelInfer of one row (x FP32 [1,256], raw_input_contents) to version 1 or 2; both versions' answers were checked equal (within 1e-4) before the load",
			"gRPC generator: grpc-go client, " + grpcConnsText(conns, batchingWorkers) + ", no deadline on the calls",
			configNote(cfg),
		},
		targets: []*target{{name: "unbatched", srv: gateway, load: &lu}, {name: "batched", srv: gateway, load: &lb}},
		load:    lu,
		phases:  []*phase{{workers: batchingWorkers, minRatio: batchingGoal}},
		close:   gateway.close,
	}
	if err := checkSameAnswer(gateway.grpcAddr, unbatched, batched, 8); err != nil {
		sc.close()
		return nil, fmt.Errorf("mlgate answers wrongly, not benchmarking it: %w", err)
	}
	// The rows of the batched version's runs, from mlgate's metrics, round
	// by round (warm-up included).
	var before batchCounts
	round := 0
	sc.beforeRound = func(t *target) error {
		if t.name == "batched" {
			before = readBatchCounts(gateway.addr)
		}
		return nil
	}
	sc.afterRound = func(t *target) error {
		if t.name != "batched" {
			return nil
		}
		round++
		after := readBatchCounts(gateway.addr)
		if !before.found || !after.found || after.runs <= before.runs {
			sc.notes = append(sc.notes, fmt.Sprintf("batched round %d: mlgate's /metrics has no mlgate_batch_size for model %s, so the batches' sizes are unknown", round, heavyName))
			return nil
		}
		runs, rows := after.runs-before.runs, after.rows-before.rows
		sc.notes = append(sc.notes, fmt.Sprintf("batched round %d (warm-up included): %.0f ONNX Runtime runs of **%.1f rows** on average (mlgate_batch_size)", round, runs, rows/runs))
		return nil
	}
	return sc, nil
}

// batchCounts are the sum and count of mlgate_batch_size for the batching
// scenario's model.
type batchCounts struct {
	rows, runs float64
	found      bool
}

// readBatchCounts reads mlgate's /metrics (Prometheus text) for the
// mlgate_batch_size series of heavyName; found is false when it has none.
func readBatchCounts(addr string) batchCounts {
	var c batchCounts
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/metrics")
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != fasthttp.StatusOK {
		return c
	}
	for _, line := range strings.Split(string(resp.Body()), "\n") {
		if !strings.Contains(line, `"`+heavyName+`"`) {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		_, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "mlgate_batch_size_sum":
			c.rows += v
			c.found = true
		case "mlgate_batch_size_count":
			c.runs += v
		}
	}
	return c
}

// checkSameAnswer calls ModelInfer with a and with b and checks that both
// answered one row of width values, equal within 1e-4 (relative).
func checkSameAnswer(addr string, a, b *pb.ModelInferRequest, width int) error {
	ya, sa, err := inferGRPC(addr, a)
	if err != nil {
		return fmt.Errorf("version %s: %w", a.ModelVersion, err)
	}
	yb, sb, err := inferGRPC(addr, b)
	if err != nil {
		return fmt.Errorf("version %s: %w", b.ModelVersion, err)
	}
	if fmt.Sprint(sa) != fmt.Sprint([]int64{1, int64(width)}) || fmt.Sprint(sb) != fmt.Sprint(sa) || len(ya) != width || len(yb) != width {
		return fmt.Errorf("shapes %v and %v, want [1 %d]", sa, sb, width)
	}
	for i := range ya {
		if d := math.Abs(float64(ya[i] - yb[i])); d > 1e-4*max(1, math.Abs(float64(ya[i]))) {
			return fmt.Errorf("version %s answered %v, version %s %v", a.ModelVersion, ya, b.ModelVersion, yb)
		}
	}
	return nil
}
