// Package inferencepb is the Go code generated from
// proto/inference/grpc_service.proto: the messages and the client and server
// of inference.GRPCInferenceService, the KServe V2 / Open Inference Protocol
// over gRPC with Triton's additions. Do not edit the .pb.go files; change the
// .proto and run `make proto`.
package inferencepb
