package grpcv2

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{errkind.New(errkind.Invalid, "inputs[0].shape: want 2 dimensions"), codes.InvalidArgument},
		{errkind.New(errkind.NotFound, `model "x" not found`), codes.NotFound},
		{errkind.New(errkind.Conflict, "alias taken"), codes.FailedPrecondition},
		{errkind.New(errkind.TooLarge, "over limits.max_tensor_elements"), codes.ResourceExhausted},
		{errkind.New(errkind.Forbidden, "needs role predict"), codes.PermissionDenied},
		{errkind.New(errkind.RateLimited, "over 10 requests/s"), codes.ResourceExhausted},
		{errkind.New(errkind.Unavailable, "still loading"), codes.Unavailable},
		{fmt.Errorf("predict: %w", errkind.New(errkind.Invalid, "wrapped")), codes.InvalidArgument},
		{auth.ErrNoKey, codes.Unauthenticated},
		{auth.ErrBadKey, codes.Unauthenticated},
		{fmt.Errorf("run: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{errors.New("onnxruntime: out of memory"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			st := status.Convert(statusOf(tt.err))
			if st.Code() != tt.want {
				t.Errorf("code %v, want %v", st.Code(), tt.want)
			}
			if st.Message() != tt.err.Error() {
				t.Errorf("message %q, want %q", st.Message(), tt.err.Error())
			}
		})
	}
}
