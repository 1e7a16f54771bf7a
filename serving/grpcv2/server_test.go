package grpcv2_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/serving/grpcv2"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// catalog is a Models of fixed models; a model in failed is known but
// cannot serve.
type catalog struct {
	grpcv2.Backend // the calls these tests do not make: nil, they panic
	gate           *gate
	ready          atomic.Bool
	models         map[string]grpcv2.ModelMetadata
	failed         map[string]bool
}

// gate records the calls it sees, and refuses them when told to.
type gate struct {
	refuse atomic.Bool
	mu     sync.Mutex
	calls  []grpcv2.Call
	auth   []string // the authorization metadata of each call
}

func (g *gate) lastAuth() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.auth[len(g.auth)-1]
}

func (g *gate) Admit(ctx context.Context, call grpcv2.Call) (context.Context, func(error), error) {
	g.mu.Lock()
	g.calls = append(g.calls, call)
	g.auth = append(g.auth, strings.Join(metadata.ValueFromIncomingContext(ctx, "authorization"), ","))
	g.mu.Unlock()
	if g.refuse.Load() {
		return nil, func(error) {}, errkind.New(errkind.Forbidden, "refused by the test gate")
	}
	return ctx, func(error) {}, nil
}

func (g *gate) last() grpcv2.Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[len(g.calls)-1]
}

func (c *catalog) Ready() bool { return c.ready.Load() }

func (c *catalog) ModelMetadata(_ context.Context, name, version string) (grpcv2.ModelMetadata, error) {
	if c.failed[name] {
		return grpcv2.ModelMetadata{}, errkind.New(errkind.Unavailable, "model %q: version 1 failed to load", name)
	}
	md, ok := c.models[name]
	if !ok {
		return grpcv2.ModelMetadata{}, errkind.New(errkind.NotFound, "model %q not found", name)
	}
	if version != "" && !slices.Contains(md.Versions, version) {
		return grpcv2.ModelMetadata{}, errkind.New(errkind.NotFound, "model %q has no version %q", name, version)
	}
	return md, nil
}

var iris = grpcv2.ModelMetadata{
	Name:     "iris",
	Versions: []string{"1", "2"},
	Platform: "onnx_onnxv1",
	Inputs:   []grpcv2.TensorMetadata{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
	Outputs: []grpcv2.TensorMetadata{
		{Name: "label", Datatype: "INT64", Shape: []int64{-1}},
		{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 3}},
	},
}

// serve runs the service on an in-memory listener and returns a client
// connection to it and the catalog behind it, ready.
func serve(t *testing.T) (*grpc.ClientConn, *catalog) {
	t.Helper()
	c := &catalog{gate: &gate{}, models: map[string]grpcv2.ModelMetadata{"iris": iris}, failed: map[string]bool{"broken": true}}
	c.ready.Store(true)
	lis := bufconn.Listen(1 << 20)
	s := grpcv2.NewServer(c, c.gate, "1.2.3", slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	})
	return conn, c
}

func TestHealthCheck(t *testing.T) {
	conn, c := serve(t)
	client := grpc_health_v1.NewHealthClient(conn)
	tests := []struct {
		name    string
		service string
		ready   bool
		want    grpc_health_v1.HealthCheckResponse_ServingStatus
		code    codes.Code
	}{
		{"server ready", "", true, grpc_health_v1.HealthCheckResponse_SERVING, codes.OK},
		{"service ready", "inference.GRPCInferenceService", true, grpc_health_v1.HealthCheckResponse_SERVING, codes.OK},
		{"server loading", "", false, grpc_health_v1.HealthCheckResponse_NOT_SERVING, codes.OK},
		{"service loading", "inference.GRPCInferenceService", false, grpc_health_v1.HealthCheckResponse_NOT_SERVING, codes.OK},
		{"unknown service", "no.Such", true, grpc_health_v1.HealthCheckResponse_UNKNOWN, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.ready.Store(tt.ready)
			resp, err := client.Check(t.Context(), &grpc_health_v1.HealthCheckRequest{Service: tt.service})
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code %v (%v), want %v", got, err, tt.code)
			}
			if got := resp.GetStatus(); got != tt.want {
				t.Errorf("status %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHealthList(t *testing.T) {
	conn, _ := serve(t)
	resp, err := grpc_health_v1.NewHealthClient(conn).List(t.Context(), &grpc_health_v1.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "inference.GRPCInferenceService"} {
		if got := resp.GetStatuses()[name].GetStatus(); got != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("%q: %v, want SERVING", name, got)
		}
	}
}

// TestReflection asks as grpcurl does: the services, then the file that
// defines the inference service's request message.
func TestReflection(t *testing.T) {
	conn, _ := serve(t)
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	list := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
	var services []string
	for _, s := range list.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"inference.GRPCInferenceService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(services, want) {
			t.Errorf("services %v lack %s", services, want)
		}
	}

	file := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "inference.ModelInferRequest"}})
	if n := len(file.GetFileDescriptorResponse().GetFileDescriptorProto()); n == 0 {
		t.Errorf("no file defines inference.ModelInferRequest: %v", file.GetErrorResponse())
	}
}

func TestServerLiveReadyMetadata(t *testing.T) {
	conn, c := serve(t)
	client := pb.NewGRPCInferenceServiceClient(conn)
	ctx := t.Context()

	live, err := client.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil || !live.GetLive() {
		t.Errorf("ServerLive: %v, %v; want live", live, err)
	}
	for _, ready := range []bool{true, false} {
		c.ready.Store(ready)
		resp, err := client.ServerReady(ctx, &pb.ServerReadyRequest{})
		if err != nil || resp.GetReady() != ready {
			t.Errorf("ServerReady with the catalog ready=%v: %v, %v", ready, resp, err)
		}
	}
	md, err := client.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.ServerMetadataResponse{Name: "mlgate", Version: "1.2.3", Extensions: grpcv2.Extensions}
	if !proto.Equal(md, want) {
		t.Errorf("ServerMetadata = %v, want %v", md, want)
	}
}

func TestModelMetadata(t *testing.T) {
	conn, _ := serve(t)
	client := pb.NewGRPCInferenceServiceClient(conn)
	wantIris := &pb.ModelMetadataResponse{
		Name:     "iris",
		Versions: []string{"1", "2"},
		Platform: "onnx_onnxv1",
		Inputs:   []*pb.ModelMetadataResponse_TensorMetadata{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []*pb.ModelMetadataResponse_TensorMetadata{
			{Name: "label", Datatype: "INT64", Shape: []int64{-1}},
			{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 3}},
		},
	}
	tests := []struct {
		name    string
		req     *pb.ModelMetadataRequest
		want    *pb.ModelMetadataResponse
		code    codes.Code
		message string // a part of the status message
	}{
		{"default version", &pb.ModelMetadataRequest{Name: "iris"}, wantIris, codes.OK, ""},
		{"a version", &pb.ModelMetadataRequest{Name: "iris", Version: "2"}, wantIris, codes.OK, ""},
		{"unknown model", &pb.ModelMetadataRequest{Name: "nosuch"}, nil, codes.NotFound, `"nosuch"`},
		{"unknown version", &pb.ModelMetadataRequest{Name: "iris", Version: "9"}, nil, codes.NotFound, `version "9"`},
		{"failed model", &pb.ModelMetadataRequest{Name: "broken"}, nil, codes.Unavailable, `"broken"`},
		{"no name", &pb.ModelMetadataRequest{}, nil, codes.InvalidArgument, "name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.ModelMetadata(t.Context(), tt.req)
			checkStatus(t, err, tt.code, tt.message)
			if tt.want != nil && !proto.Equal(resp, tt.want) {
				t.Errorf("got %v, want %v", resp, tt.want)
			}
		})
	}
}

func TestModelReady(t *testing.T) {
	conn, c := serve(t)
	client := pb.NewGRPCInferenceServiceClient(conn)
	tests := []struct {
		name       string
		req        *pb.ModelReadyRequest
		notLoading bool // the catalog is still loading
		ready      bool
		code       codes.Code
		message    string
	}{
		{"served", &pb.ModelReadyRequest{Name: "iris"}, false, true, codes.OK, ""},
		{"served version", &pb.ModelReadyRequest{Name: "iris", Version: "1"}, false, true, codes.OK, ""},
		{"unknown model", &pb.ModelReadyRequest{Name: "nosuch"}, false, false, codes.NotFound, `model "nosuch"`},
		{"unknown version", &pb.ModelReadyRequest{Name: "iris", Version: "9"}, false, false, codes.NotFound, `model "iris" has no version "9"`},
		{"failed to load", &pb.ModelReadyRequest{Name: "broken"}, false, false, codes.OK, ""},
		{"server loading", &pb.ModelReadyRequest{Name: "iris"}, true, false, codes.OK, ""},
		{"no name", &pb.ModelReadyRequest{Version: "1"}, false, false, codes.InvalidArgument, "name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.ready.Store(!tt.notLoading)
			resp, err := client.ModelReady(t.Context(), tt.req)
			checkStatus(t, err, tt.code, tt.message)
			if resp.GetReady() != tt.ready {
				t.Errorf("ready %v, want %v", resp.GetReady(), tt.ready)
			}
		})
	}
}

// TestPanicIsInternal: a call whose backend panics answers INTERNAL, and
// the server goes on serving.
func TestPanicIsInternal(t *testing.T) {
	conn, _ := serve(t)
	client := pb.NewGRPCInferenceServiceClient(conn)
	_, err := client.ModelConfig(t.Context(), &pb.ModelConfigRequest{Name: "iris"}) // the fake has no ModelConfig: it panics
	checkStatus(t, err, codes.Internal, "ModelConfig failed")
	if _, err := client.ServerLive(t.Context(), &pb.ServerLiveRequest{}); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

// TestGate: every call passes the gate with the role its method needs, and
// a call the gate refuses answers with the gate's error.
func TestGate(t *testing.T) {
	conn, c := serve(t)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer k")
	tests := []struct {
		name   string
		call   func() error
		method string
		public bool
		role   auth.Role
	}{
		{"ModelInfer", func() error {
			_, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, &pb.ModelInferRequest{})
			return err
		}, "/inference.GRPCInferenceService/ModelInfer", false, auth.Predict},
		{"ServerLive", func() error {
			_, err := pb.NewGRPCInferenceServiceClient(conn).ServerLive(ctx, &pb.ServerLiveRequest{})
			return err
		}, "/inference.GRPCInferenceService/ServerLive", false, auth.Predict},
		{"health", func() error {
			_, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
			return err
		}, "/grpc.health.v1.Health/Check", true, ""},
		{"reflection", func() error {
			stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.gate.refuse.Store(true)
			defer c.gate.refuse.Store(false)
			err := tt.call()
			checkStatus(t, err, codes.PermissionDenied, "refused by the test gate")
			got := c.gate.last()
			if got.Method != tt.method || got.Public != tt.public || got.Role != tt.role {
				t.Errorf("gate saw %s public=%v role=%q, want %s public=%v role=%q", got.Method, got.Public, got.Role, tt.method, tt.public, tt.role)
			}
			if v := c.gate.lastAuth(); v != "Bearer k" {
				t.Errorf("gate saw authorization %q", v)
			}
		})
	}
}

func checkStatus(t *testing.T, err error, code codes.Code, message string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code %v (%q), want %v", st.Code(), st.Message(), code)
	}
	if !strings.Contains(st.Message(), message) {
		t.Errorf("message %q does not contain %q", st.Message(), message)
	}
}
