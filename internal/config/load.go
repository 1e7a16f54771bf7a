package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable the loader reads.
const EnvPrefix = "MLGATE_"

// ClientEnv lists MLGATE_ variables that belong to the command-line client,
// not to the gateway configuration. Load ignores them instead of rejecting
// them as unknown.
var ClientEnv = []string{"MLGATE_SERVER", "MLGATE_API_KEY"}

// Load applies the YAML file at path (skipped when path is empty) and then
// the MLGATE_ variables in environ (KEY=VALUE entries, as from os.Environ)
// onto dst, a pointer to a struct already holding the defaults. Finally, if
// dst has a Validate() error method, Load returns its result.
//
// Unknown keys, unknown MLGATE_ variables (other than ClientEnv) and
// malformed values are errors that name the offending key. On error dst
// may be partly updated.
func Load(path string, environ []string, dst any) error {
	root := reflect.ValueOf(dst)
	if root.Kind() != reflect.Pointer || root.IsNil() || root.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", dst)
	}
	root = root.Elem()
	leaves, err := envLeaves(root.Type())
	if err != nil {
		return err
	}
	byEnv := make(map[string]leaf, len(leaves))
	for _, l := range leaves {
		if prev, ok := byEnv[l.env]; ok {
			return fmt.Errorf("config: keys %s and %s share the environment variable %s", prev.key, l.key, l.env)
		}
		if slices.Contains(ClientEnv, l.env) {
			return fmt.Errorf("config: key %s maps to %s, which is reserved for the client", l.key, l.env)
		}
		byEnv[l.env] = l
	}
	if path != "" {
		if err := loadFile(path, root); err != nil {
			return err
		}
	}
	if err := applyEnv(environ, byEnv, root); err != nil {
		return err
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// EnvKeys returns the sorted environment variable names of all settable
// leaves of dst, a struct or pointer to a struct. It panics if dst is not
// one or has a field of an unsupported type.
func EnvKeys(dst any) []string {
	t := reflect.TypeOf(dst)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("config.EnvKeys: need a struct or pointer to struct, got %T", dst))
	}
	leaves, err := envLeaves(t)
	if err != nil {
		panic(err)
	}
	names := make([]string, len(leaves))
	for i, l := range leaves {
		names[i] = l.env
	}
	slices.Sort(names)
	return names
}

// leaf is a value that can be set from the environment: a scalar, a slice
// of scalars, or a mapping of names to scalars.
type leaf struct {
	key   string // dotted key path, e.g. "registry.max_model_bytes"
	env   string // e.g. "MLGATE_REGISTRY_MAX_MODEL_BYTES"
	index []int  // field index path from the root struct
}

// envLeaves lists the leaves of struct type t and checks that every
// configurable field, including those inside slices of structs, has a
// supported type.
func envLeaves(t reflect.Type) ([]leaf, error) {
	var out []leaf
	err := walkType(t, "", nil, &out)
	return out, err
}

// walkType implements envLeaves for the fields of t under key. Leaves are
// appended to out unless out is nil (inside slices of structs).
func walkType(t reflect.Type, key string, index []int, out *[]leaf) error {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		k := joinKey(key, name)
		idx := append(slices.Clip(index), i)
		ft := f.Type
		switch {
		case isScalar(ft) || ft.Kind() == reflect.Slice && isScalar(ft.Elem()) || isScalarMap(ft):
			if out != nil {
				env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
				*out = append(*out, leaf{key: k, env: env, index: idx})
			}
		case ft.Kind() == reflect.Struct:
			if err := walkType(ft, k, idx, out); err != nil {
				return err
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if err := walkType(ft.Elem(), k+"[]", nil, nil); err != nil {
				return err
			}
		default:
			return fmt.Errorf("config: key %s has unsupported type %s", k, ft)
		}
	}
	return nil
}

// yamlName returns the configurable name of f from its yaml tag, or "" if
// f is not configurable (unexported, untagged or tagged "-").
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// isScalar reports whether t is a supported single-value type.
func isScalar(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	}
	return false
}

// isScalarMap reports whether t is a supported mapping: string keys to
// single values.
func isScalarMap(t reflect.Type) bool {
	return t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && isScalar(t.Elem())
}

// setScalar parses s into v, which must be addressable and of a type for
// which isScalar is true.
func setScalar(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return numError("boolean", s, err)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return numError("integer", s, err)
		}
		v.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return numError("number", s, err)
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("invalid number %q: must be finite", s)
		}
		v.SetFloat(x)
	}
	return nil
}

// applyEnv sets the leaves named by MLGATE_ entries of environ.
func applyEnv(environ []string, byEnv map[string]leaf, root reflect.Value) error {
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(ClientEnv, name) {
			continue
		}
		l, ok := byEnv[name]
		if !ok {
			return fmt.Errorf("environment variable %s: matches no config key", name)
		}
		if err := setEnv(root.FieldByIndex(l.index), val); err != nil {
			return fmt.Errorf("environment variable %s (%s): %w", name, l.key, err)
		}
	}
	return nil
}

// setEnv sets v from an environment value. Slices are comma-separated
// lists whose elements are trimmed of spaces; an empty value is an empty
// list. Mappings are comma-separated key:value items, likewise trimmed; an
// empty value is an empty mapping.
func setEnv(v reflect.Value, val string) error {
	if isScalarMap(v.Type()) {
		return setEnvMap(v, val)
	}
	if v.Kind() != reflect.Slice || isScalar(v.Type()) {
		return setScalar(v, val)
	}
	var parts []string
	if val != "" {
		parts = strings.Split(val, ",")
	}
	s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
	for i, p := range parts {
		if err := setScalar(s.Index(i), strings.TrimSpace(p)); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	v.Set(s)
	return nil
}

// setEnvMap sets the mapping v from key:value items separated by commas.
func setEnvMap(v reflect.Value, val string) error {
	m := reflect.MakeMap(v.Type())
	if val != "" {
		for i, item := range strings.Split(val, ",") {
			k, x, ok := strings.Cut(item, ":")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return fmt.Errorf("item %d: want key:value, got %q", i, strings.TrimSpace(item))
			}
			if m.MapIndex(reflect.ValueOf(k)).IsValid() {
				return fmt.Errorf("item %d: duplicate key %q", i, k)
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setScalar(e, strings.TrimSpace(x)); err != nil {
				return fmt.Errorf("item %d (%s): %w", i, k, err)
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
	}
	v.Set(m)
	return nil
}

// loadFile reads the YAML file at path and applies it onto root.
func loadFile(path string, root reflect.Value) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return fmt.Errorf("config file %s: holds more than one YAML document (line %d)", path, next.Line)
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	d := fileDecoder{path: path}
	return d.decode(doc.Content[0], root, "")
}

// fileDecoder applies YAML nodes onto Go values, naming the file, the full
// key path and the line in every error.
type fileDecoder struct {
	path string
}

// keyError reports a problem with the value of key at node n.
func (d fileDecoder) keyError(n *yaml.Node, key string, err error) error {
	if key == "" {
		return fmt.Errorf("config file %s: top level (line %d): %w", d.path, n.Line, err)
	}
	return fmt.Errorf("config file %s: config key %s (line %d): %w", d.path, key, n.Line, err)
}

// decode applies n onto v, whose key path is key. A null value leaves v
// as it is; a sequence replaces the whole slice, a mapping the whole map.
func (d fileDecoder) decode(n *yaml.Node, v reflect.Value, key string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	t := v.Type()
	switch {
	case isScalar(t):
		if n.Kind != yaml.ScalarNode {
			return d.keyError(n, key, fmt.Errorf("expected a single value, got %s", nodeKind(n)))
		}
		if err := setScalar(v, n.Value); err != nil {
			return d.keyError(n, key, err)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.keyError(n, key, fmt.Errorf("expected a mapping, got %s", nodeKind(n)))
		}
		return d.decodeStruct(n, v, key)
	case isScalarMap(t):
		if n.Kind != yaml.MappingNode {
			return d.keyError(n, key, fmt.Errorf("expected a mapping, got %s", nodeKind(n)))
		}
		return d.decodeMap(n, v, key)
	default: // slice
		if n.Kind != yaml.SequenceNode {
			return d.keyError(n, key, fmt.Errorf("expected a sequence, got %s", nodeKind(n)))
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	}
	return nil
}

// decodeStruct applies the mapping n onto the struct v.
func (d fileDecoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) error {
	fields := make(map[string]int)
	for i := range v.NumField() {
		if name := yamlName(v.Type().Field(i)); name != "" {
			fields[name] = i
		}
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("config file %s: expected a key name, got %s (line %d)", d.path, nodeKind(kn), kn.Line)
		}
		k := joinKey(key, kn.Value)
		idx, ok := fields[kn.Value]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q (line %d)", d.path, k, kn.Line)
		}
		if seen[kn.Value] {
			return fmt.Errorf("config file %s: duplicate key %q (line %d)", d.path, k, kn.Line)
		}
		seen[kn.Value] = true
		if err := d.decode(vn, v.Field(idx), k); err != nil {
			return err
		}
	}
	return nil
}

// decodeMap replaces the map v with the mapping n, whose keys are free
// names and whose values are single values.
func (d fileDecoder) decodeMap(n *yaml.Node, v reflect.Value, key string) error {
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("config file %s: config key %s: expected a key name, got %s (line %d)", d.path, key, nodeKind(kn), kn.Line)
		}
		k := reflect.ValueOf(kn.Value).Convert(v.Type().Key())
		if m.MapIndex(k).IsValid() {
			return fmt.Errorf("config file %s: duplicate key %q (line %d)", d.path, joinKey(key, kn.Value), kn.Line)
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if err := d.decode(vn, e, joinKey(key, kn.Value)); err != nil {
			return err
		}
		m.SetMapIndex(k, e)
	}
	v.Set(m)
	return nil
}

// nodeKind describes the kind of n for error messages.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a single value"
	}
}
