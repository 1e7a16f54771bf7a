package registry

import (
	"strconv"
	"unicode/utf8"

	"github.com/mlgate/mlgate/internal/names"
)

// Model names and aliases appear in URLs and in references such as
// "name@alias" and "name/3", so neither may hold '@' or '/'.
const maxAlias = 64

// CheckModelName reports whether name can name a model: the rule of
// package names (1 to 128 letters, digits, '_', '-' or '.', starting with a
// letter or digit).
func CheckModelName(name string) error {
	if err := names.Check(name); err != nil {
		return invalid("model name: %v", err)
	}
	return nil
}

// CheckAlias reports whether alias can name an alias: 1 to 64 letters, digits,
// '_' or '-', starting with a letter, so that it never reads as a version
// number.
func CheckAlias(alias string) error {
	if err := checkName("alias", alias, maxAlias, isAliasByte); err != nil {
		return err
	}
	if !isLetter(alias[0]) {
		return invalid("alias %q: must start with a letter", alias)
	}
	return nil
}

// ParseVersion parses a version number as it appears in a URL.
// Only plain digits without a leading zero are accepted, so that each version
// has one spelling.
func ParseVersion(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s[0] < '1' || s[0] > '9' {
		return 0, invalid("version %q: must be a positive whole number", s)
	}
	return n, nil
}

func checkName(what, s string, limit int, ok func(byte) bool) error {
	if s == "" {
		return invalid("%s: must not be empty", what)
	}
	if len(s) > limit {
		return invalid("%s: at most %d characters, got %d", what, limit, len(s))
	}
	for i, r := range s {
		if r >= utf8.RuneSelf || !ok(s[i]) {
			return invalid("%s %q: character %q is not allowed", what, s, r)
		}
	}
	return nil
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func isAliasByte(c byte) bool  { return isLetter(c) || isDigit(c) || c == '_' || c == '-' }
func isNameByte(c byte) bool   { return isAliasByte(c) || c == '.' }
func isTagKeyByte(c byte) bool { return isNameByte(c) || c == ':' }
