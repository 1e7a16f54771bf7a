package serving

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/serving/grpcv2"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/mlgate/mlgate/serving/onnx"
)

// The V2 protocol over gRPC (see package grpcv2) is served from the same
// Server as HTTP: its calls pass Admit, as HTTP requests pass the
// middlewares instrument, deadline and admit, and ModelInfer runs the one
// pipeline. The metadata keys are the HTTP headers' names in lower case.
var (
	_ grpcv2.Backend = (*Server)(nil)
	_ grpcv2.Gate    = (*Server)(nil)
)

// The metadata a gRPC call may carry, besides authorization and trace
// context: the headers of the same names over HTTP.
const (
	mdRequestID = "x-request-id"
	mdVariant   = "x-mlgate-variant"
	mdUnit      = "x-mlgate-unit"
)

// grpcMethod is the method label of gRPC calls in mlgate_requests_total,
// whose route is the call's full method name.
const grpcMethod = "GRPC"

// Ready reports whether the server takes inference calls: its models have
// loaded, and it is not draining.
func (s *Server) Ready() bool { return s.catalog.Ready() && !s.draining.Load() }

// Admit begins a gRPC call: it continues the caller's trace in a server
// span, takes its request id, sets its deadline (the caller's, held to
// server.max_request_timeout, else server.request_timeout), and, unless the
// call is public, authenticates the caller from the authorization metadata
// and holds it to its rate limit, to the call's role and to
// server.max_body_memory. done ends the span
// and counts the call in mlgate_requests_total, with the HTTP status its
// error has over HTTP.
func (s *Server) Admit(ctx context.Context, call grpcv2.Call) (context.Context, func(error), error) {
	if call.Public {
		return ctx, func(error) {}, nil
	}
	start := time.Now()
	sc := &requestScope{}
	if id := first(ctx, mdRequestID); id != "" && len(id) <= maxRequestIDBytes {
		sc.requestID = id
	}
	ctx = s.propagator.Extract(ctx, metadataCarrier{ctx})
	span := noSpan
	if s.tracer != nil {
		ctx, span = s.tracer.Start(ctx, call.Method, trace.WithSpanKind(trace.SpanKindServer))
	}
	sc.Context = ctx
	ctx, cancel := s.callDeadline(sc)
	done := func(err error) {
		cancel()
		status := fiber.StatusOK
		if err != nil {
			status = statusOf(err)
		}
		if span.IsRecording() {
			span.SetAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", call.Method))
			if sc.requestID != "" {
				span.SetAttributes(attrRequestID.String(sc.requestID))
			}
			if status >= fiber.StatusInternalServerError {
				span.SetStatus(codes.Error, err.Error())
			}
		}
		span.End()
		sc.labels.method, sc.labels.route, sc.labels.status = grpcMethod, call.Method, status
		s.requests.record(sc, &sc.labels, time.Since(start))
	}
	id, err := s.auth.Authenticate(first(ctx, "authorization"))
	if err != nil {
		return nil, done, err
	}
	if ok, wait := s.limiter.Allow(id.Name); !ok {
		return nil, done, s.overLimit(id.Name, wait)
	}
	if call.Role != "" && !id.Has(call.Role) {
		return nil, done, fmt.Errorf("%w: key %q lacks the %s role %s needs", errForbidden, id.Name, call.Role, call.Method)
	}
	// The request message counts against server.max_body_memory while the
	// call holds it, as an HTTP body does.
	if !s.bodies.take(call.Size) {
		return nil, done, errkind.New(errBusy, "the server holds as many requests as server.max_body_memory (%d bytes) allows; retry shortly", s.bodies.max)
	}
	sc.caller = id
	return ctx, func(err error) {
		s.bodies.give(call.Size)
		done(err)
	}, nil
}

// callDeadline is the deadline of a gRPC call: the caller's (its
// grpc-timeout), held to server.max_request_timeout, else
// server.request_timeout.
func (s *Server) callDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.opts.RequestTimeout
	if _, ok := ctx.Deadline(); ok {
		d = s.opts.MaxRequestTimeout
	}
	if d <= 0 {
		return ctx, func() {}
	}
	return withBound(ctx, d)
}

// metadataCarrier lets a propagator read the metadata of the call ctx
// belongs to.
type metadataCarrier struct{ ctx context.Context }

var _ propagation.TextMapCarrier = metadataCarrier{}

func (m metadataCarrier) Get(key string) string { return first(m.ctx, key) }

// Set completes the carrier: mlgate reads trace context from calls and
// does not call it.
func (m metadataCarrier) Set(string, string) {}

func (m metadataCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(m.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// first is the first value of the metadata key of the call ctx belongs
// to, or "".
func first(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// ModelMetadata is the V2 metadata of model name at version.
func (s *Server) ModelMetadata(_ context.Context, name, version string) (grpcv2.ModelMetadata, error) {
	md, err := s.metadataOfModel(name, version)
	if err != nil {
		return grpcv2.ModelMetadata{}, err
	}
	return grpcv2.ModelMetadata{Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: grpcTensors(md.Inputs), Outputs: grpcTensors(md.Outputs)}, nil
}

// grpcTensors is the metadata of tensors over gRPC, where an output of
// datatype JSON (a ZipMap's maps) is answered as BYTES (see grpcAnswer).
func grpcTensors(ts []tensorMetadata) []grpcv2.TensorMetadata {
	out := make([]grpcv2.TensorMetadata, len(ts))
	for i, t := range ts {
		out[i] = grpcv2.TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		if t.Datatype == onnx.JSON.String() {
			out[i].Datatype = onnx.Bytes.String()
		}
	}
	return out
}

// ModelInfer serves V2 inference over gRPC through the pipeline: on a
// model, or on the endpoint of that name when there is one and no version
// is asked for, its variant from the x-mlgate-variant metadata, else
// x-mlgate-unit, else a draw by weight. Outputs are answered in
// raw_output_contents when the request sent its inputs so (or asks so
// with parameters.binary_data_output), else in typed contents.
func (s *Server) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	in, raw, err := decodeGRPCInfer(req, s.limits)
	if err != nil {
		return nil, err
	}
	o := observationIn(ctx)
	o.requestID, o.model, o.version, o.v2, o.encode = in.ID, req.GetModelName(), req.GetModelVersion(), in, encodeInferAnswerJSON
	if s.tables != nil {
		o.body = encodeInferRecord(in)
	}
	if s.router != nil && o.version == "" {
		if r, ok := s.router.Route(o.model); ok {
			if o.unit = first(ctx, mdUnit); len(o.unit) > maxUnitBytes {
				return nil, invalidInput("%s: %d bytes is longer than %d", mdUnit, len(o.unit), maxUnitBytes)
			}
			o.route, o.pin = r, first(ctx, mdVariant)
		}
	}
	if err := s.process(o); err != nil {
		return nil, err
	}
	defer o.p.Release()
	s.settleID(o)
	t := time.Now()
	resp := grpcAnswer(o, raw)
	o.p.served(t, o.start)
	if s.tables != nil {
		o.response = encodeInferAnswerJSON(make([]byte, 0, jsonSizeHint(o.p.outputs)), o)
	}
	s.settle(o)
	return resp, nil
}

// ModelConfig is the configuration of model name at version.
func (s *Server) ModelConfig(_ context.Context, name, version string) (*pb.ModelConfig, error) {
	cfg, err := s.configOf(name, version)
	if err != nil {
		return nil, err
	}
	out := &pb.ModelConfig{Name: cfg.Name, Platform: cfg.Platform, Backend: cfg.Backend, MaxBatchSize: int32(cfg.MaxBatchSize)}
	if b := cfg.DynamicBatching; b != nil {
		out.DynamicBatching = &pb.ModelDynamicBatching{MaxQueueDelayMicroseconds: uint64(b.MaxQueueDelayMicroseconds)}
	}
	for _, t := range cfg.Input {
		out.Input = append(out.Input, &pb.ModelInput{Name: t.Name, DataType: pb.DataType(pb.DataType_value[t.DataType]), Dims: t.Dims})
	}
	for _, t := range cfg.Output {
		out.Output = append(out.Output, &pb.ModelOutput{Name: t.Name, DataType: pb.DataType(pb.DataType_value[t.DataType]), Dims: t.Dims})
	}
	return out, nil
}

// ModelStatistics are the counts of model name's loaded versions.
func (s *Server) ModelStatistics(_ context.Context, name, version string) ([]*pb.ModelStatistics, error) {
	st, err := s.statistics(name, version)
	if err != nil {
		return nil, err
	}
	out := make([]*pb.ModelStatistics, len(st))
	for i, m := range st {
		is := m.InferenceStats
		out[i] = &pb.ModelStatistics{
			Name: m.Name, Version: m.Version, LastInference: uint64(m.LastInference),
			InferenceCount: uint64(m.InferenceCount), ExecutionCount: uint64(m.ExecutionCount),
			InferenceStats: &pb.InferStatistics{
				Success: grpcDuration(is.Success), Fail: grpcDuration(is.Fail), Queue: grpcDuration(is.Queue),
				ComputeInput: grpcDuration(is.ComputeInput), ComputeInfer: grpcDuration(is.ComputeInfer),
				ComputeOutput: grpcDuration(is.ComputeOutput),
			},
		}
	}
	return out, nil
}

func grpcDuration(d statDuration) *pb.StatisticDuration {
	return &pb.StatisticDuration{Count: uint64(d.Count), Ns: uint64(d.NS)}
}

// RepositoryIndex lists the registered versions.
func (s *Server) RepositoryIndex(_ context.Context, readyOnly bool) ([]*pb.RepositoryIndexResponse_ModelIndex, error) {
	idx, err := s.index(readyOnly)
	if err != nil {
		return nil, err
	}
	out := make([]*pb.RepositoryIndexResponse_ModelIndex, len(idx))
	for i, m := range idx {
		out[i] = &pb.RepositoryIndexResponse_ModelIndex{Name: m.Name, Version: m.Version, State: m.State, Reason: m.Reason}
	}
	return out, nil
}

// stringParam is a string InferParameter.
func stringParam(v string) *pb.InferParameter {
	return &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
}
