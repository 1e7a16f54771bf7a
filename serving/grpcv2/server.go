package grpcv2

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// ServerName is the name ServerMetadata reports, as the HTTP V2 API does.
const ServerName = "mlgate"

// TensorMetadata describes one input or output of a model.
type TensorMetadata struct {
	Name string
	// Datatype is a V2 datatype: BOOL, UINT8 ... FP64, BYTES.
	Datatype string
	// Shape has -1 for a dimension of variable size.
	Shape []int64
}

// ModelMetadata describes a model at the version a call resolved.
type ModelMetadata struct {
	Name string
	// Versions are the versions of the model that are served.
	Versions []string
	Platform string
	Inputs   []TensorMetadata
	Outputs  []TensorMetadata
}

// Models is what Server needs of the gateway's model catalog.
//
// Errors are reported to the caller by their errkind (see codeOf), with
// their text as the status message, so that text must be fit for a client
// to read and must name what it is about.
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

// Server implements inference.GRPCInferenceService over a Models. The calls
// it does not answer yet (ModelInfer, ModelStreamInfer, ModelConfig,
// ModelStatistics, RepositoryIndex) answer UNIMPLEMENTED.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer

	models  Models
	version string
}

var _ pb.GRPCInferenceServiceServer = (*Server)(nil)

// New returns a Server answering from models; version is the gateway's
// version, reported by ServerMetadata.
func New(models Models, version string) *Server {
	return &Server{models: models, version: version}
}

// Register registers srv on s as inference.GRPCInferenceService, together
// with grpc.health.v1 (whose status follows srv's readiness) and server
// reflection (v1 and v1alpha, which grpcurl and the grpc_cli use).
func Register(s *grpc.Server, srv *Server) {
	pb.RegisterGRPCInferenceServiceServer(s, srv)
	grpc_health_v1.RegisterHealthServer(s, &health{models: srv.models})
	reflection.Register(s)
}

// ServerLive answers live as long as the server answers at all.
func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

// ServerReady answers whether the gateway can take inference calls.
func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: s.models.Ready()}, nil
}

// ModelReady answers whether one model can take inference calls: NOT_FOUND
// for a model (or version) that is not served, ready false for one that
// cannot serve yet.
func (s *Server) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if req.GetName() == "" {
		return nil, errNameRequired
	}
	if !s.models.Ready() {
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	_, err := s.models.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	switch {
	case err == nil:
		return &pb.ModelReadyResponse{Ready: true}, nil
	case errkind.Of(err) == errkind.Unavailable:
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, statusOf(err)
}

// ServerMetadata answers the gateway's name and version. It lists no
// protocol extensions yet.
func (s *Server) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: ServerName, Version: s.version, Extensions: []string{}}, nil
}

// ModelMetadata answers a model's versions, platform and tensors.
func (s *Server) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if req.GetName() == "" {
		return nil, errNameRequired
	}
	md, err := s.models.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, statusOf(err)
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

var errNameRequired = status.Error(codes.InvalidArgument, "name is required: the model to ask about")

// codeOfKind is the gRPC status code of each kind of error.
var codeOfKind = map[errkind.Kind]codes.Code{
	errkind.Invalid:     codes.InvalidArgument,
	errkind.NotFound:    codes.NotFound,
	errkind.Conflict:    codes.FailedPrecondition,
	errkind.TooLarge:    codes.ResourceExhausted,
	errkind.Forbidden:   codes.PermissionDenied,
	errkind.RateLimited: codes.ResourceExhausted,
	errkind.Unavailable: codes.Unavailable,
}

// codeOf maps an error to its gRPC status code: by the error's kind, else by
// the few errors that have none, else INTERNAL.
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

// statusOf is err as a gRPC status: its code by codeOf, its text as the
// message.
func statusOf(err error) error {
	return status.Error(codeOf(err), err.Error())
}

// health answers grpc.health.v1 from the gateway's readiness: SERVING when
// Models is ready, NOT_SERVING otherwise, for the whole server ("") and for
// inference.GRPCInferenceService alike. Watch is not offered (UNIMPLEMENTED):
// probes and grpc_health_probe use Check, and grpc-go clients treat a server
// without Watch as healthy.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
	models Models
}

// checkedServices are the service names health answers for.
var checkedServices = []string{"", pb.GRPCInferenceService_ServiceDesc.ServiceName}

func (h *health) status() grpc_health_v1.HealthCheckResponse_ServingStatus {
	if h.models.Ready() {
		return grpc_health_v1.HealthCheckResponse_SERVING
	}
	return grpc_health_v1.HealthCheckResponse_NOT_SERVING
}

// Check answers the status of the server or of the inference service, and
// NOT_FOUND for any other service name.
func (h *health) Check(_ context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	for _, name := range checkedServices {
		if req.GetService() == name {
			return &grpc_health_v1.HealthCheckResponse{Status: h.status()}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "service %q: unknown to health checking; ask for \"\" or %q", req.GetService(), checkedServices[1])
}

// List answers the status of every service Check answers for.
func (h *health) List(context.Context, *grpc_health_v1.HealthListRequest) (*grpc_health_v1.HealthListResponse, error) {
	st := h.status()
	out := make(map[string]*grpc_health_v1.HealthCheckResponse, len(checkedServices))
	for _, name := range checkedServices {
		out[name] = &grpc_health_v1.HealthCheckResponse{Status: st}
	}
	return &grpc_health_v1.HealthListResponse{Statuses: out}, nil
}
