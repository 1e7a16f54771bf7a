package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// AllKeys returns the keys of auth.keys followed by those of auth.keys_file,
// if it is set. The file holds a YAML list of keys in the form of auth.keys
// (name, sha256, roles, rate, burst); an empty file holds none. It is decoded
// strictly: an unknown key is an error that names it and its line. Each
// entry is checked as Validate checks auth.keys, and a name given twice, in
// the file or in both places, is an error. Every error names the file.
func (a *Auth) AllKeys() ([]APIKey, error) {
	if a.KeysFile == "" {
		return a.Keys, nil
	}
	fromFile, lines, err := readKeysFile(a.KeysFile)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(a.Keys)+len(fromFile))
	for i, k := range a.Keys {
		names[k.Name] = fmt.Sprintf("auth.keys[%d]", i)
	}
	var errs []error
	for i, k := range fromFile {
		fail := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("keys file %s (auth.keys_file): %s (line %d): %s", a.KeysFile, key, lines[i], fmt.Sprintf(format, args...)))
		}
		// Names in the file read as the file's own entries ("[2]"), so that
		// a duplicate says where both are.
		checkKey(fmt.Sprintf("[%d]", i), k, names, fail)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return append(a.Keys[:len(a.Keys):len(a.Keys)], fromFile...), nil
}

// readKeysFile decodes the keys file at path, returning its entries and the
// line each starts on.
func readKeysFile(path string) ([]APIKey, []int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth.keys_file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, next yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file
		}
		return nil, nil, fmt.Errorf("keys file %s (auth.keys_file): %w", path, err)
	}
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("keys file %s (auth.keys_file): holds more than one YAML document (line %d)", path, next.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, nil, fmt.Errorf("keys file %s (auth.keys_file): expected a list of keys, got %s (line %d)", path, nodeKind(list), list.Line)
	}
	var keys []APIKey
	if err := (fileDecoder{path: path}).decode(list, reflect.ValueOf(&keys).Elem(), ""); err != nil {
		return nil, nil, fmt.Errorf("auth.keys_file: %w", err)
	}
	lines := make([]int, len(list.Content))
	for i, n := range list.Content {
		lines[i] = n.Line
	}
	return keys, lines, nil
}
