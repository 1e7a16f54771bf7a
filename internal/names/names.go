// Package names holds the rule for the names that requests give to what the
// gateway keeps (models, endpoints, drift monitors). Such names end up in
// URLs, store keys, metric labels and file paths, so they are short, plain
// ASCII, and can neither climb out of a directory nor hide in one.
package names

import (
	"errors"
	"unicode/utf8"

	"github.com/mlgate/mlgate/internal/errkind"
)

// MaxLen is the length of the longest name, in bytes.
const MaxLen = 128

// ErrInvalid is the kind of every error Check returns.
var ErrInvalid = errors.New("invalid name")

// Check reports whether s can be a name: 1 to MaxLen letters, digits, '_',
// '-' or '.', starting with a letter or digit (so neither ".hidden", "..",
// nor "-flag"). Its errors match ErrInvalid and say what is wrong, but not
// what was being named: the caller puts the field in front.
func Check(s string) error {
	switch {
	case s == "":
		return errkind.New(ErrInvalid, "must not be empty")
	case len(s) > MaxLen:
		return errkind.New(ErrInvalid, "at most %d characters, got %d", MaxLen, len(s))
	}
	for i, r := range s {
		if r >= utf8.RuneSelf || !isNameByte(s[i]) {
			return errkind.New(ErrInvalid, "%q: character %q is not allowed (letters, digits, '_', '-' and '.' are)", s, r)
		}
	}
	if !isLetter(s[0]) && !isDigit(s[0]) {
		return errkind.New(ErrInvalid, "%q: must start with a letter or digit", s)
	}
	return nil
}

func isLetter(c byte) bool   { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isNameByte(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '.' }
