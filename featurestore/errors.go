package featurestore

import "github.com/mlgate/mlgate/internal/errkind"

// Errors of the feature store, wrapped with a message that says what was
// wrong. They are the kinds of package errkind, which callers test with
// errors.Is and map to status codes.
const (
	// ErrNotFound: the view does not exist.
	ErrNotFound = errkind.NotFound
	// ErrInvalid: the caller sent something unusable.
	ErrInvalid = errkind.Invalid
	// ErrConflict: the change would break something that depends on it.
	ErrConflict = errkind.Conflict
	// ErrUnavailable: a store is not taking calls for now (its circuit
	// breaker is open); the same call may succeed shortly.
	ErrUnavailable = errkind.Unavailable
)

func invalid(format string, args ...any) error  { return errkind.New(ErrInvalid, format, args...) }
func notFound(format string, args ...any) error { return errkind.New(ErrNotFound, format, args...) }
func conflict(format string, args ...any) error { return errkind.New(ErrConflict, format, args...) }
func unavailable(format string, args ...any) error {
	return errkind.New(ErrUnavailable, format, args...)
}

// Invalid returns an error matching ErrInvalid, for backends and decoders that
// must report a caller's mistake.
func Invalid(format string, args ...any) error { return invalid(format, args...) }

// NotFound returns an error matching ErrNotFound.
func NotFound(format string, args ...any) error { return notFound(format, args...) }
