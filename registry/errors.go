package registry

import "github.com/mlgate/mlgate/internal/errkind"

// Errors returned by the registry, wrapped with a message that says what was
// wrong. They are the kinds of package errkind, which callers test with
// errors.Is and map to status codes.
const (
	// ErrNotFound: the model, version or alias does not exist.
	ErrNotFound = errkind.NotFound
	// ErrInvalid: the caller sent something unusable (a bad name, bad metadata,
	// a file that is not a loadable model).
	ErrInvalid = errkind.Invalid
	// ErrConflict: the change clashes with the current state (deleting a
	// version an alias points at).
	ErrConflict = errkind.Conflict
	// ErrTooLarge: an upload is larger than the configured limit.
	ErrTooLarge = errkind.TooLarge
)

func notFound(format string, args ...any) error { return errkind.New(ErrNotFound, format, args...) }
func invalid(format string, args ...any) error  { return errkind.New(ErrInvalid, format, args...) }
func conflict(format string, args ...any) error { return errkind.New(ErrConflict, format, args...) }

// Invalid returns an error matching ErrInvalid with the given message. It is
// for implementations of the interfaces declared here (an Inspector refusing a
// file, say) that must report a caller's mistake.
func Invalid(format string, args ...any) error { return invalid(format, args...) }

// TooLarge returns an error matching ErrTooLarge with the given message.
func TooLarge(format string, args ...any) error { return errkind.New(ErrTooLarge, format, args...) }

// NotFound returns an error matching ErrNotFound with the given message.
func NotFound(format string, args ...any) error { return notFound(format, args...) }
