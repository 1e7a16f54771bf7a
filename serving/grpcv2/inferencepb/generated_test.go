package inferencepb_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// repoRoot is where the paths in proto.sha256 start.
const repoRoot = "../../.."

// TestGeneratedFromCurrentProto fails when a .proto changed after the Go code
// was generated from it: proto.sha256, which `make proto` writes beside the
// code, records each .proto as it was then. Run `make proto` to fix it.
func TestGeneratedFromCurrentProto(t *testing.T) {
	f, err := os.Open("proto.sha256")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("proto.sha256: line %q is not \"<sha256>  <path>\"", sc.Text())
		}
		lines++
		data, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s changed since the Go code was generated from it: run `make proto` and commit the result", path)
		}
	}
	if lines == 0 {
		t.Fatal("proto.sha256 lists no .proto")
	}
}

// TestServiceName: the stock clients call /inference.GRPCInferenceService/...,
// so the package and service name must stay as the protocol has them.
func TestServiceName(t *testing.T) {
	if got := pb.GRPCInferenceService_ServiceDesc.ServiceName; got != "inference.GRPCInferenceService" {
		t.Errorf("service %q, want inference.GRPCInferenceService", got)
	}
	if got := pb.File_inference_grpc_service_proto.Path(); got != "inference/grpc_service.proto" {
		t.Errorf("file path %q, want inference/grpc_service.proto", got)
	}
}
