package serving_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/mlgate/mlgate/serving/onnx"
)

// grpcClient connects to the gateway's gRPC server.
func (g *gateway) grpcClient() (pb.GRPCInferenceServiceClient, *grpc.ClientConn) {
	g.t.Helper()
	conn, err := grpc.NewClient(g.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn), conn
}

// withKey is ctx carrying key as the authorization metadata, and md's
// pairs.
func withKey(ctx context.Context, key string, md ...string) context.Context {
	if key != "" {
		md = append(md, "authorization", "Bearer "+key)
	}
	return metadata.AppendToOutgoingContext(ctx, md...)
}

// fp32Raw is v in raw_input_contents form.
func fp32Raw(v ...float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func linearInput(contents bool) *pb.ModelInferRequest_InferInputTensor {
	in := &pb.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP32", Shape: []int64{2, 4}}
	if contents {
		in.Contents = &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4, 5, 6, 7, 8}}
	}
	return in
}

// TestGRPCInfer runs models through the gRPC server: typed contents and raw
// contents in, each answered in kind, equal to ONNX Runtime's own run;
// BYTES and INT64; a ZipMap's maps as JSON strings.
func TestGRPCInfer(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("strings", modelzoo.Strings)
	g.register("iris", modelzoo.IrisFile)
	client, _ := g.grpcClient()
	ctx := t.Context()
	want := direct(t, modelzoo.Linear, onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8}})[0].Data.([]float32)

	resp, err := client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "linear", Id: "typed", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModelName() != "linear" || resp.GetModelVersion() != "1" || resp.GetId() != "typed" || len(resp.GetRawOutputContents()) != 0 {
		t.Errorf("typed answer %v", resp)
	}
	if got := resp.GetOutputs()[0].GetContents().GetFp32Contents(); !slices.Equal(got, want) {
		t.Errorf("typed y = %v, want %v", got, want)
	}

	resp, err = client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "linear", ModelVersion: "1",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(false)}, RawInputContents: [][]byte{fp32Raw(1, 2, 3, 4, 5, 6, 7, 8)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetRawOutputContents(); len(got) != 1 || string(got[0]) != string(fp32Raw(want...)) {
		t.Errorf("raw y = %v, want the bytes of %v", got, want)
	}
	if s := resp.GetOutputs()[0].GetShape(); !slices.Equal(s, []int64{2, 2}) {
		t.Errorf("raw y shape %v", s)
	}

	text := &pb.ModelInferRequest_InferInputTensor{Name: "text", Datatype: "BYTES", Shape: []int64{2, 1},
		Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("dog"), []byte("emu")}}}
	resp, err = client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "strings", Inputs: []*pb.ModelInferRequest_InferInputTensor{text}})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range resp.GetOutputs() {
		switch out.GetName() {
		case "code":
			if got := out.GetContents().GetInt64Contents(); !slices.Equal(got, []int64{2, -1}) {
				t.Errorf("code %v, want [2 -1]", got)
			}
		case "echo":
			if got := out.GetContents().GetBytesContents(); len(got) != 2 || string(got[0]) != "dog" || string(got[1]) != "emu" {
				t.Errorf("echo %q", got)
			}
		}
	}

	resp, err = client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "iris", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "float_input", Datatype: "FP32", Shape: []int64{1, 4}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{5.1, 3.5, 1.4, 0.2}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range resp.GetOutputs() {
		if out.GetName() == "output_probability" {
			maps := out.GetContents().GetBytesContents()
			if out.GetDatatype() != "BYTES" || len(maps) != 1 || !strings.HasPrefix(string(maps[0]), `{"0":`) {
				t.Errorf("ZipMap output %s %q, want BYTES of JSON maps", out.GetDatatype(), maps)
			}
		}
	}
}

// TestGRPCInferErrors: a bad call is answered with the status code of its
// kind and a message that names the field.
func TestGRPCInferErrors(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) { c.Limits.MaxRows = 100; c.Limits.MaxTensorElements = 1000 }))
	g.register("linear", modelzoo.Linear)
	client, _ := g.grpcClient()
	in := func(edit func(*pb.ModelInferRequest_InferInputTensor)) []*pb.ModelInferRequest_InferInputTensor {
		x := linearInput(true)
		edit(x)
		return []*pb.ModelInferRequest_InferInputTensor{x}
	}
	tests := []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"no model", &pb.ModelInferRequest{Inputs: in(func(*pb.ModelInferRequest_InferInputTensor) {})}, codes.InvalidArgument, "model_name is required"},
		{"unknown model", &pb.ModelInferRequest{ModelName: "nope", Inputs: in(func(*pb.ModelInferRequest_InferInputTensor) {})}, codes.NotFound, `"nope"`},
		{"unknown version", &pb.ModelInferRequest{ModelName: "linear", ModelVersion: "9", Inputs: in(func(*pb.ModelInferRequest_InferInputTensor) {})}, codes.NotFound, "9"},
		{"no inputs", &pb.ModelInferRequest{ModelName: "linear"}, codes.InvalidArgument, "inputs: at least one input is required"},
		{"wrong shape", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) {
			x.Shape = []int64{2, 3}
			x.Contents.Fp32Contents = x.Contents.Fp32Contents[:6]
		})}, codes.InvalidArgument, `input "x": shape [2,3] does not fit the model's [-1,4]`},
		{"wrong count", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Contents.Fp32Contents = x.Contents.Fp32Contents[:7] })},
			codes.InvalidArgument, `input "x": contents.fp32_contents has 7 elements, but its shape takes 8`},
		{"wrong field", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) {
			x.Contents = &pb.InferTensorContents{Int64Contents: []int64{1, 2, 3, 4, 5, 6, 7, 8}}
		})}, codes.InvalidArgument, "contents.int64_contents is given, but datatype FP32 takes its data in contents.fp32_contents"},
		{"wrong datatype", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Datatype = "FP17" })}, codes.InvalidArgument, `input "x": `},
		{"unknown input", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Name = "z" })}, codes.InvalidArgument, `input "z": model linear has no such input`},
		{"no data", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Contents = nil })}, codes.InvalidArgument, "data is required"},
		{"raw too short", &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(false)}, RawInputContents: [][]byte{fp32Raw(1, 2, 3)}},
			codes.InvalidArgument, "raw_input_contents[0] is 12 bytes, but shape [2,4] of FP32 takes 32"},
		{"raw and contents", &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}, RawInputContents: [][]byte{fp32Raw(1, 2, 3, 4, 5, 6, 7, 8)}},
			codes.InvalidArgument, "gives both contents and raw_input_contents[0]"},
		{"raw count", &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(false)}, RawInputContents: [][]byte{nil, nil}},
			codes.InvalidArgument, "raw_input_contents: 2 entries for 1 inputs"},
		{"too many rows", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Shape = []int64{101, 4} })},
			codes.InvalidArgument, "limits.max_rows (100)"},
		{"too many elements", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(x *pb.ModelInferRequest_InferInputTensor) { x.Shape = []int64{50, 40} })},
			codes.ResourceExhausted, "limits.max_tensor_elements (1000)"},
		{"unknown output", &pb.ModelInferRequest{ModelName: "linear", Inputs: in(func(*pb.ModelInferRequest_InferInputTensor) {}),
			Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}}, codes.InvalidArgument, `output "nope": the model has no such output`},
		{"long name", &pb.ModelInferRequest{ModelName: strings.Repeat("m", 300), Inputs: in(func(*pb.ModelInferRequest_InferInputTensor) {})}, codes.NotFound, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.ModelInfer(t.Context(), tt.req)
			st := status.Convert(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("%v %q, want %v containing %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
		})
	}
	// A message over server.max_body_bytes is refused before it is read.
	big := linearInput(false)
	big.Shape = []int64{99, 4}
	_, err := client.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{big}, RawInputContents: [][]byte{make([]byte, 2<<20)}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a 2 MiB message: %v, want ResourceExhausted", err)
	}
}

// TestGRPCEndpoint: a model_name that names an endpoint routes through it;
// the variant comes from x-mlgate-variant, and the answer names both.
func TestGRPCEndpoint(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	if r := g.json("PUT", "/v1/endpoints/scorer", map[string]any{"variants": []map[string]any{
		{"name": "a", "model": "linear/1", "weight": 1}, {"name": "b", "model": "linear/2", "weight": 0}}}); r.status != 201 {
		t.Fatalf("put endpoint: %d %s", r.status, r.body)
	}
	client, _ := g.grpcClient()
	x := onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8}}
	for variant, file := range map[string]string{"a": modelzoo.Linear, "b": modelzoo.LinearV2} {
		resp, err := client.ModelInfer(withKey(t.Context(), "", "x-mlgate-variant", variant),
			&pb.ModelInferRequest{ModelName: "scorer", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}})
		if err != nil {
			t.Fatal(err)
		}
		want := direct(t, file, x)[0].Data.([]float32)
		if got := resp.GetOutputs()[0].GetContents().GetFp32Contents(); !slices.Equal(got, want) {
			t.Errorf("variant %s: y = %v, want %v", variant, got, want)
		}
		p := resp.GetParameters()
		if p["endpoint"].GetStringParam() != "scorer" || p["variant"].GetStringParam() != variant {
			t.Errorf("variant %s: parameters %v", variant, p)
		}
	}
	_, err := client.ModelInfer(withKey(t.Context(), "", "x-mlgate-variant", "c"),
		&pb.ModelInferRequest{ModelName: "scorer", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), `variant "c" (pinned by X-Mlgate-Variant): endpoint scorer has no such variant`) {
		t.Errorf("unknown variant: %v", err)
	}
	var ep struct {
		Variants []struct {
			Name  string `json:"name"`
			Stats struct {
				Requests int64 `json:"requests"`
			} `json:"stats"`
		} `json:"variants"`
	}
	g.do("GET", "/v1/endpoints/scorer", "", nil).decode(t, &ep)
	for _, v := range ep.Variants {
		if v.Stats.Requests < 1 {
			t.Errorf("variant %s counted %d requests, want the gRPC call's", v.Name, v.Stats.Requests)
		}
	}
}

// grpcRoleCase is one call of the gRPC server, made with each key in turn.
type grpcRoleCase struct {
	method string // the full method name
	call   func(ctx context.Context, conn *grpc.ClientConn) error
	want   [5]codes.Code // per key: none, predict, data-scientist, sre, admin
}

func grpcRoleCases() []grpcRoleCase {
	predictor := [5]codes.Code{codes.Unauthenticated, codes.OK, codes.PermissionDenied, codes.PermissionDenied, codes.OK}
	anyKey := [5]codes.Code{codes.Unauthenticated, codes.OK, codes.OK, codes.OK, codes.OK}
	every := [5]codes.Code{codes.OK, codes.OK, codes.OK, codes.OK, codes.OK}
	c := func(conn *grpc.ClientConn) pb.GRPCInferenceServiceClient {
		return pb.NewGRPCInferenceServiceClient(conn)
	}
	svc := "/inference.GRPCInferenceService/"
	infer := &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}}
	return []grpcRoleCase{
		{svc + "ServerLive", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ServerLive(ctx, &pb.ServerLiveRequest{})
			return err
		}, predictor},
		{svc + "ServerReady", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ServerReady(ctx, &pb.ServerReadyRequest{})
			return err
		}, predictor},
		{svc + "ModelReady", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ModelReady(ctx, &pb.ModelReadyRequest{Name: "linear"})
			return err
		}, predictor},
		{svc + "ServerMetadata", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ServerMetadata(ctx, &pb.ServerMetadataRequest{})
			return err
		}, predictor},
		{svc + "ModelMetadata", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "linear"})
			return err
		}, predictor},
		{svc + "ModelInfer", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ModelInfer(ctx, infer)
			return err
		}, predictor},
		{svc + "ModelStreamInfer", func(ctx context.Context, conn *grpc.ClientConn) error {
			stream, err := c(conn).ModelStreamInfer(ctx)
			if err != nil {
				return err
			}
			// A stream the server refused says so to Recv; Send gets io.EOF.
			if err := stream.Send(infer); err != nil && err != io.EOF {
				return err
			}
			resp, err := stream.Recv()
			if err == nil && resp.GetErrorMessage() != "" {
				return status.Error(codes.Unknown, resp.GetErrorMessage())
			}
			return err
		}, predictor},
		{svc + "ModelConfig", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ModelConfig(ctx, &pb.ModelConfigRequest{Name: "linear"})
			return err
		}, predictor},
		{svc + "ModelStatistics", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).ModelStatistics(ctx, &pb.ModelStatisticsRequest{Name: "linear"})
			return err
		}, predictor},
		{svc + "RepositoryIndex", func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := c(conn).RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
			return err
		}, predictor},
		{"/grpc.health.v1.Health/Check", func(ctx context.Context, conn *grpc.ClientConn) error {
			resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
			if err == nil && resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
				return status.Errorf(codes.Unknown, "health %v", resp.GetStatus())
			}
			return err
		}, every},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", func(ctx context.Context, conn *grpc.ClientConn) error {
			stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil && err != io.EOF {
				return err
			}
			resp, err := stream.Recv()
			if err == nil && !slices.ContainsFunc(resp.GetListServicesResponse().GetService(), func(s *rpb.ServiceResponse) bool {
				return s.GetName() == "inference.GRPCInferenceService"
			}) {
				return status.Errorf(codes.Unknown, "reflection lists %v", resp)
			}
			return err
		}, anyKey},
	}
}

// TestGRPCRoles checks that each gRPC call asks for its role, with the
// keys of TestRoles: UNAUTHENTICATED without a key, PERMISSION_DENIED with
// the wrong one, and with the right one an answer.
func TestGRPCRoles(t *testing.T) {
	g := startGateway(t, withKeys(roleKeys...))
	g.apiKey = "k-ds"
	g.register("linear", modelzoo.Linear)
	_, conn := g.grpcClient()
	for _, rc := range grpcRoleCases() {
		for i, key := range roleSecrets {
			ctx, cancel := context.WithTimeout(withKey(t.Context(), key), 10*time.Second)
			err := rc.call(ctx, conn)
			cancel()
			if got := status.Code(err); got != rc.want[i] {
				t.Errorf("%s with key %q: %v, want %v", rc.method, key, err, rc.want[i])
			}
		}
	}
	_, err := pb.NewGRPCInferenceServiceClient(conn).ServerLive(withKey(t.Context(), "wrong"), &pb.ServerLiveRequest{})
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "unknown API key") {
		t.Errorf("wrong key: %v", err)
	}
}

// TestGRPCRolesCoverEveryMethod fails when a method of the inference
// service has no row in grpcRoleCases.
func TestGRPCRolesCoverEveryMethod(t *testing.T) {
	rows := map[string]bool{}
	for _, rc := range grpcRoleCases() {
		rows[rc.method] = true
	}
	sd := pb.GRPCInferenceService_ServiceDesc
	var methods []string
	for _, m := range sd.Methods {
		methods = append(methods, m.MethodName)
	}
	for _, s := range sd.Streams {
		methods = append(methods, s.StreamName)
	}
	for _, m := range methods {
		if !rows["/"+sd.ServiceName+"/"+m] {
			t.Errorf("method %s has no row in grpcRoleCases: add one with the code each role gets", m)
		}
	}
}

// TestGRPCLimits: a call's message counts against server.max_body_memory
// while it is served, and metadata beyond its bound is refused; the server
// goes on serving.
func TestGRPCLimits(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) { c.Server.MaxBodyMemory = 64 }))
	g.register("linear", modelzoo.Linear)
	client, _ := g.grpcClient()
	x := linearInput(false)
	x.Shape = []int64{16, 4}
	req := &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{x}, RawInputContents: [][]byte{make([]byte, 16*4*4)}}
	_, err := client.ModelInfer(t.Context(), req)
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "server.max_body_memory (64 bytes)") {
		t.Errorf("a message over the body memory: %v, want Unavailable naming server.max_body_memory", err)
	}
	_, err = client.ServerLive(withKey(t.Context(), "", "x-padding", strings.Repeat("p", 100<<10)), &pb.ServerLiveRequest{})
	if err == nil {
		t.Error("100 KiB of metadata was taken")
	}
	if _, err := client.ServerLive(t.Context(), &pb.ServerLiveRequest{}); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
}

// TestGRPCTrace: a gRPC call continues the caller's trace (traceparent in
// its metadata) in a server span named by its method, with the pipeline's
// spans under it, and is counted in mlgate_requests_total.
func TestGRPCTrace(t *testing.T) {
	tr, exp := inMemoryTracing(t)
	g := startGateway(t, withTracing(tr))
	g.register("linear", modelzoo.Linear)
	client, _ := g.grpcClient()
	exp.Reset()
	ctx := withKey(t.Context(), "", "traceparent", callerTraceparent, "x-request-id", "req-grpc-1")
	if _, err := client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}}); err != nil {
		t.Fatal(err)
	}
	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	server, ok := spans["/inference.GRPCInferenceService/ModelInfer"]
	if !ok {
		t.Fatalf("no server span; spans: %v", names(exp.GetSpans()))
	}
	if got := server.SpanContext.TraceID().String(); got != callerTrace || server.Parent.SpanID().String() != callerSpan {
		t.Errorf("server span trace %s parent %s, want the caller's %s %s", got, server.Parent.SpanID(), callerTrace, callerSpan)
	}
	wantAttrs(t, server, map[string]string{"rpc.system": "grpc", "mlgate.request_id": "req-grpc-1"})
	inference, ok := spans["inference"]
	if !ok || inference.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("inference span %v, want it under the server span", inference)
	}
	metrics := string(g.do("GET", "/metrics", "", nil).body)
	if !strings.Contains(metrics, `method="GRPC"`) || !strings.Contains(metrics, `route="/inference.GRPCInferenceService/ModelInfer"`) {
		t.Errorf("/metrics lacks the gRPC call:\n%.2000s", metrics)
	}
}

// TestGRPCShutdown stops a server under gRPC load: readiness and the
// health check go false during the drain delay while calls are still
// answered; then every call in flight is answered, and a call made after
// the server stopped taking them is UNAVAILABLE (which clients retry),
// never failed half-way.
func TestGRPCShutdown(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) { c.Server.DrainDelay = config.Duration(300 * time.Millisecond) }))
	g.register("linear", modelzoo.Linear)
	client, conn := g.grpcClient()
	req := &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}}
	var answered, refused atomic.Int64
	var mu sync.Mutex
	var failed []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := client.ModelInfer(context.Background(), req)
				switch status.Code(err) {
				case codes.OK:
					answered.Add(1)
				case codes.Unavailable:
					refused.Add(1)
				default:
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	for answered.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- g.server.Shutdown(ctx) }()
	time.Sleep(100 * time.Millisecond) // within the drain delay
	health, err := grpc_health_v1.NewHealthClient(conn).Check(t.Context(), &grpc_health_v1.HealthCheckRequest{})
	if err != nil || health.GetStatus() != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during the drain delay: %v %v, want NOT_SERVING", health, err)
	}
	before := answered.Load()
	time.Sleep(50 * time.Millisecond)
	if answered.Load() == before {
		t.Error("no call answered during the drain delay")
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for refused.Load() < 8 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answered, %d refused after the shutdown", answered.Load(), refused.Load())
	if len(failed) > 0 {
		t.Errorf("%d calls failed otherwise, first: %v", len(failed), failed[0])
	}
}

// TestGRPCRecorded: a gRPC call is a row of the inference table, its
// request and answer in JSON as an HTTP one's, raw contents included, under
// the caller's request id.
func TestGRPCRecorded(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	client, _ := g.grpcClient()
	_, err := client.ModelInfer(withKey(t.Context(), "", "x-request-id", "grpc-row-1"), &pb.ModelInferRequest{ModelName: "linear", Id: "g-1",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(false)}, RawInputContents: [][]byte{fp32Raw(1, 2, 3, 4, 5, 6, 7, 8)}})
	if err != nil {
		t.Fatal(err)
	}
	rows := g.tableRows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.RequestID != "g-1" || r.ModelName != "linear" || r.ModelVersion != 1 || r.StatusCode != 200 {
		t.Errorf("row %+v", r)
	}
	var req struct {
		Inputs []struct {
			Data []float32 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(r.Request), &req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Data) != 8 || req.Inputs[0].Data[7] != 8 {
		t.Errorf("recorded request %q (%v)", r.Request, err)
	}
	var answer struct {
		Outputs []struct {
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(r.Response), &answer); err != nil || len(answer.Outputs) != 1 || len(answer.Outputs[0].Data) != 4 {
		t.Errorf("recorded answer %q (%v)", r.Response, err)
	}
}
