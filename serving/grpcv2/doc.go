// Package grpcv2 serves the KServe V2 / Open Inference Protocol over gRPC
// (inference.GRPCInferenceService, generated in inferencepb), so that the
// stock gRPC clients of KServe and Triton can call the gateway.
//
// Server answers the health and metadata calls (ServerLive, ServerReady,
// ModelReady, ServerMetadata, ModelMetadata) from a Models, the little it
// needs of the gateway's catalog; the other calls answer UNIMPLEMENTED for
// now. Register puts it on a grpc.Server together with grpc.health.v1 and
// server reflection.
package grpcv2
