package router

import "github.com/mlgate/mlgate/internal/errkind"

// Errors returned by the router, wrapped with a message that says what was
// wrong. They are the kinds of package errkind, which callers test with
// errors.Is and map to status codes.
const (
	// ErrInvalid: the caller sent something unusable (a bad policy, weight,
	// model reference or canary spec). The message names the field.
	ErrInvalid = errkind.Invalid
	// ErrConflict: the change clashes with the endpoint's state (changing
	// weights while a canary runs, starting a second canary), or the
	// endpoint changed meanwhile (a Store refused to save a revision that
	// does not follow the stored one).
	ErrConflict = errkind.Conflict
	// ErrNotFound: the endpoint does not exist.
	ErrNotFound = errkind.NotFound
	// ErrUnavailable: what the call needs (the fleet's figures) cannot be
	// read for now; the same call may succeed shortly.
	ErrUnavailable = errkind.Unavailable
)

func notFound(format string, args ...any) error { return errkind.New(ErrNotFound, format, args...) }

// NotFound returns an error matching ErrNotFound with the given message.
func NotFound(format string, args ...any) error { return notFound(format, args...) }

// RevisionConflict returns the error, matching ErrConflict, of a Store that
// refuses to save revision of endpoint name because it holds revision stored
// (0 when it holds none), not revision-1.
func RevisionConflict(name string, revision, stored int) error {
	switch {
	case stored == 0:
		return conflict("endpoint %s: cannot save revision %d, none is stored (deleted meanwhile?)", name, revision)
	case revision == 1:
		return conflict("endpoint %s exists already, at revision %d", name, stored)
	}
	return conflict("endpoint %s changed meanwhile: cannot save revision %d over stored revision %d", name, revision, stored)
}

func invalid(format string, args ...any) error { return errkind.New(ErrInvalid, format, args...) }
func unavailable(format string, args ...any) error {
	return errkind.New(ErrUnavailable, format, args...)
}
func conflict(format string, args ...any) error { return errkind.New(ErrConflict, format, args...) }

// causeError is an ErrInvalid whose message ends with another error's, which
// it also wraps: a model reference the resolver refused matches both
// ErrInvalid and, say, registry.ErrNotFound. ErrInvalid comes first, so that
// the error's kind (errkind.Of) is Invalid whatever the cause's.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string   { return e.msg }
func (e *causeError) Unwrap() []error { return []error{ErrInvalid, e.cause} }

func invalidCause(field string, cause error) error {
	return &causeError{msg: field + ": " + cause.Error(), cause: cause}
}
