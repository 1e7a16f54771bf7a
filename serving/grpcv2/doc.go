// Package grpcv2 serves the KServe V2 / Open Inference Protocol over gRPC
// (inference.GRPCInferenceService, generated in inferencepb), so that the
// stock gRPC clients of KServe and Triton can call the gateway.
//
// NewServer makes a grpc.Server that serves the protocol from a Backend (the
// gateway's serving.Server, whose one pipeline answers ModelInfer as it
// answers every HTTP prediction), together with grpc.health.v1 and server
// reflection. Every call passes a Gate first, which authenticates its
// caller from the `authorization` metadata, holds it to its role and its
// rate limit, sets its deadline and accounts for it; the role each method
// needs is in one table (see roles). The one map from the gateway's error
// kinds to gRPC status codes is codeOf.
package grpcv2
