package grpcv2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// ServerName is what ServerMetadata reports as the server's name.
const ServerName = "mlgate"

// TensorMetadata describes one input or output of a model.
type TensorMetadata struct {
	Name string
	// Datatype is a V2 datatype: BOOL, UINT8 ... FP64, BYTES.
	Datatype string
	// Shape has -1 for a dimension of variable size.
	Shape []int64
}

// ModelMetadata is what ModelMetadata reports of a model.
type ModelMetadata struct {
	Name string
	// Versions are the versions of the model that are served.
	Versions []string
	Platform string
	Inputs   []TensorMetadata
	Outputs  []TensorMetadata
}

// Models is the little the health and metadata calls need of the gateway.
type Models interface {
	// Ready reports whether the server can take inference calls: false
	// while it is still loading its models or while it is draining.
	Ready() bool

	// ModelMetadata returns the metadata of model name at version: a
	// version number, an alias, or "" for the version the server picks. It
	// returns an error of kind errkind.NotFound, naming the model (or the
	// version), when nothing of that name or version is served, and one of
	// kind errkind.Unavailable when the model cannot serve yet (the server
	// is still loading, the version failed to load).
	ModelMetadata(ctx context.Context, name, version string) (ModelMetadata, error)
}

// Backend is what the service serves from. Its errors carry an
// errkind.Kind, which codeOf maps to a status code; their message goes to
// the caller as the status message.
type Backend interface {
	Models

	// ModelInfer runs an inference call through the gateway's pipeline: a
	// model_name that names an endpoint routes through it, as over HTTP.
	ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error)
	// ModelConfig returns the configuration of model name at version, in
	// the shape of Triton's model configuration.
	ModelConfig(ctx context.Context, name, version string) (*pb.ModelConfig, error)
	// ModelStatistics returns the statistics of each loaded version of
	// model name (every model when name is ""), or of one version.
	ModelStatistics(ctx context.Context, name, version string) ([]*pb.ModelStatistics, error)
	// RepositoryIndex lists every registered version, or only those ready
	// to serve.
	RepositoryIndex(ctx context.Context, readyOnly bool) ([]*pb.RepositoryIndexResponse_ModelIndex, error)
}

// Call is one call as a Gate sees it.
type Call struct {
	// Method is the full method name, /package.Service/Method.
	Method string
	// Public calls (health checks) need no key; the others need an
	// authenticated caller holding Role ("" for any role).
	Public bool
	Role   auth.Role
	// The caller's metadata (authorization, trace context, x-request-id,
	// the endpoint's x-mlgate-variant and x-mlgate-unit) is in the call's
	// context: metadata.ValueFromIncomingContext reads a key without
	// copying the rest.
	// Size is the size in bytes of the call's request message, which the
	// call holds until it is answered; 0 for a stream.
	Size int64
}

// Gate admits each call and accounts for it, as the HTTP server's
// middlewares do for a request.
type Gate interface {
	// Admit authenticates the caller and holds it to call's role and to its
	// rate limit, and returns the context the call runs in (its trace, its
	// deadline, its scope) and a function to call with the call's outcome
	// once it is answered. It returns an error, and no context, when the
	// call may not run; done must still be called with that error.
	Admit(ctx context.Context, call Call) (_ context.Context, done func(error), _ error)
}

// roles is the role each method of the inference service needs: every one
// reads models or runs them, as the HTTP V2 routes do, so every one needs
// predict. Reflection (which describes the protocol, not the models) needs
// a key of any role; health checks, which probes make, need none.
var roles = func() map[string]auth.Role {
	m := map[string]auth.Role{}
	for _, md := range pb.GRPCInferenceService_ServiceDesc.Methods {
		m["/"+pb.GRPCInferenceService_ServiceDesc.ServiceName+"/"+md.MethodName] = auth.Predict
	}
	for _, sd := range pb.GRPCInferenceService_ServiceDesc.Streams {
		m["/"+pb.GRPCInferenceService_ServiceDesc.ServiceName+"/"+sd.StreamName] = auth.Predict
	}
	return m
}()

// callOf is the Call of full method name.
func callOf(method string) Call {
	c := Call{Method: method}
	switch role, ok := roles[method]; {
	case ok:
		c.Role = role
	case method == "/grpc.health.v1.Health/Check", method == "/grpc.health.v1.Health/List", method == "/grpc.health.v1.Health/Watch":
		c.Public = true
	}
	return c
}

// NewServer returns a grpc.Server serving the V2 protocol from b, health
// checks and reflection, every call admitted by gate. version is what
// ServerMetadata reports; log gets the calls that panicked.
func NewServer(b Backend, gate Gate, version string, log *slog.Logger, opts ...grpc.ServerOption) *grpc.Server {
	i := &interceptor{gate: gate, log: log}
	s := grpc.NewServer(append(opts, grpc.UnaryInterceptor(i.unary), grpc.StreamInterceptor(i.stream))...)
	srv := &Server{backend: b, gate: gate, version: version}
	pb.RegisterGRPCInferenceServiceServer(s, srv)
	grpc_health_v1.RegisterHealthServer(s, &health{models: b})
	reflection.Register(s)
	return s
}

// interceptor runs every call through the gate, and answers a panic in a
// call as INTERNAL rather than crashing the process.
type interceptor struct {
	gate Gate
	log  *slog.Logger
}

func (i *interceptor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	call := callOf(info.FullMethod)
	if m, ok := req.(proto.Message); ok {
		call.Size = int64(proto.Size(m))
	}
	ctx, done, err := i.gate.Admit(ctx, call)
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, i.panicked(info.FullMethod, v)
		}
		done(err)
		err = statusOf(err)
	}()
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (i *interceptor) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ctx, done, err := i.gate.Admit(ss.Context(), callOf(info.FullMethod))
	defer func() {
		if v := recover(); v != nil {
			err = i.panicked(info.FullMethod, v)
		}
		done(err)
		err = statusOf(err)
	}()
	if err != nil {
		return err
	}
	return handler(srv, &scopedStream{ServerStream: ss, ctx: ctx})
}

func (i *interceptor) panicked(method string, v any) error {
	i.log.Error("gRPC call panicked", "method", method, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Errorf("%s failed: an internal error (the server log has it)", method)
}

// scopedStream is a stream whose context is the one its gate gave.
type scopedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *scopedStream) Context() context.Context { return s.ctx }

// Server implements inference.GRPCInferenceService.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer

	backend Backend
	gate    Gate
	version string
}

var _ pb.GRPCInferenceServiceServer = (*Server)(nil)

func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: s.backend.Ready()}, nil
}

// ModelReady answers false, not an error, for a model that exists but
// cannot serve yet.
func (s *Server) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if req.GetName() == "" {
		return nil, errNameRequired
	}
	if !s.backend.Ready() {
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	_, err := s.backend.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	switch {
	case err == nil:
		return &pb.ModelReadyResponse{Ready: true}, nil
	case errkind.Of(err) == errkind.Unavailable:
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, err
}

// Extensions are the protocol extensions the server implements, as
// ServerMetadata lists them.
var Extensions = []string{"binary_tensor_data", "model_configuration", "statistics", "model_repository"}

func (s *Server) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: ServerName, Version: s.version, Extensions: Extensions}, nil
}

func (s *Server) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if req.GetName() == "" {
		return nil, errNameRequired
	}
	md, err := s.backend.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelMetadataResponse{
		Name:     md.Name,
		Versions: md.Versions,
		Platform: md.Platform,
		Inputs:   tensorsOf(md.Inputs),
		Outputs:  tensorsOf(md.Outputs),
	}, nil
}

func tensorsOf(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
	out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
	for i, t := range ts {
		out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
	}
	return out
}

func (s *Server) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	if req.GetModelName() == "" {
		return nil, errkind.New(errkind.Invalid, "model_name is required: the model or endpoint to run")
	}
	return s.backend.ModelInfer(ctx, req)
}

// ModelStreamInfer answers each request of the stream in turn, as Triton
// does: a request that fails is answered with its error_message, and the
// stream goes on. Each request passes the gate as a call of its own, so
// that it counts against the caller's rate limit and has its own deadline,
// trace and record.
func (s *Server) ModelStreamInfer(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err == io.EOF || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		out := &pb.ModelStreamInferResponse{}
		if out.InferResponse, err = s.streamInfer(ctx, req); err != nil {
			out = &pb.ModelStreamInferResponse{ErrorMessage: status.Convert(statusOf(err)).Message()}
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// streamMethod is the method a request of a stream passes the gate as.
var streamMethod = "/" + pb.GRPCInferenceService_ServiceDesc.ServiceName + "/ModelStreamInfer"

func (s *Server) streamInfer(ctx context.Context, req *pb.ModelInferRequest) (_ *pb.ModelInferResponse, err error) {
	call := callOf(streamMethod)
	call.Size = int64(proto.Size(req))
	ctx, done, err := s.gate.Admit(ctx, call)
	defer func() { done(err) }()
	if err != nil {
		return nil, err
	}
	return s.ModelInfer(ctx, req)
}

func (s *Server) ModelConfig(ctx context.Context, req *pb.ModelConfigRequest) (*pb.ModelConfigResponse, error) {
	if req.GetName() == "" {
		return nil, errNameRequired
	}
	cfg, err := s.backend.ModelConfig(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelConfigResponse{Config: cfg}, nil
}

func (s *Server) ModelStatistics(ctx context.Context, req *pb.ModelStatisticsRequest) (*pb.ModelStatisticsResponse, error) {
	if req.GetName() == "" && req.GetVersion() != "" {
		return nil, errkind.New(errkind.Invalid, "version is given without name: name the model whose version to report")
	}
	st, err := s.backend.ModelStatistics(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelStatisticsResponse{ModelStats: st}, nil
}

func (s *Server) RepositoryIndex(ctx context.Context, req *pb.RepositoryIndexRequest) (*pb.RepositoryIndexResponse, error) {
	models, err := s.backend.RepositoryIndex(ctx, req.GetReady())
	if err != nil {
		return nil, err
	}
	return &pb.RepositoryIndexResponse{Models: models}, nil
}

// errNameRequired: a call about a model that names none. Errors are of a
// kind, as the backend's are, so that the gate counts them by it.
var errNameRequired = errkind.New(errkind.Invalid, "name is required: the model to ask about")

// codeOfKind is the status code of each kind of error.
var codeOfKind = map[errkind.Kind]codes.Code{
	errkind.Invalid:     codes.InvalidArgument,
	errkind.NotFound:    codes.NotFound,
	errkind.Conflict:    codes.FailedPrecondition,
	errkind.TooLarge:    codes.ResourceExhausted,
	errkind.Forbidden:   codes.PermissionDenied,
	errkind.RateLimited: codes.ResourceExhausted,
	errkind.Unavailable: codes.Unavailable,
}

// codeOf maps an error to its gRPC status code: the one place that does,
// by the error's kind, else by the few sentinels that have none, else
// INTERNAL.
func codeOf(err error) codes.Code {
	if code, ok := codeOfKind[errkind.Of(err)]; ok {
		return code
	}
	switch {
	case errors.Is(err, auth.ErrNoKey), errors.Is(err, auth.ErrBadKey):
		return codes.Unauthenticated
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}

// statusOf is err as the status a call answers: unchanged when it is a
// status already (or nil), else with the code codeOf gives and err's
// message.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// health answers grpc.health.v1 for the server as a whole ("") and for the
// inference service: SERVING once the models have loaded, until draining.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
	models Models
}

var checkedServices = []string{"", pb.GRPCInferenceService_ServiceDesc.ServiceName}

func (h *health) status() grpc_health_v1.HealthCheckResponse_ServingStatus {
	if h.models.Ready() {
		return grpc_health_v1.HealthCheckResponse_SERVING
	}
	return grpc_health_v1.HealthCheckResponse_NOT_SERVING
}

func (h *health) Check(_ context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	for _, name := range checkedServices {
		if req.GetService() == name {
			return &grpc_health_v1.HealthCheckResponse{Status: h.status()}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "service %q: unknown to health checking; ask for \"\" or %q", req.GetService(), checkedServices[1])
}

func (h *health) List(context.Context, *grpc_health_v1.HealthListRequest) (*grpc_health_v1.HealthListResponse, error) {
	st := h.status()
	out := make(map[string]*grpc_health_v1.HealthCheckResponse, len(checkedServices))
	for _, name := range checkedServices {
		out[name] = &grpc_health_v1.HealthCheckResponse{Status: st}
	}
	return &grpc_health_v1.HealthListResponse{Statuses: out}, nil
}
