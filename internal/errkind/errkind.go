// Package errkind makes errors that read as a plain message for the caller
// yet match a package's sentinel (ErrNotFound, ErrInvalid, ...) under
// errors.Is, so that one function can map them to status codes.
package errkind

import "fmt"

// Error is a message of a kind.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// New returns an error of kind with a formatted message.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
