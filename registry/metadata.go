package registry

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mlgate/mlgate/internal/jsondur"
	"github.com/mlgate/mlgate/internal/jsonerr"
)

// Metadata is what a caller may say about a version when registering it.
type Metadata struct {
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Lineage     Lineage           `json:"lineage"`
	// FeatureSpec says which online features fill the model's inputs. The
	// registry keeps it as given; a SpecChecker judges it.
	FeatureSpec json.RawMessage `json:"feature_spec"`
	// Baseline holds the distributions of the training data that drift
	// monitors compare live inputs and predictions with. The registry keeps
	// it as given; a BaselineChecker judges it.
	Baseline json.RawMessage `json:"baseline"`
	// Batching, when set, has the gateway fuse concurrent requests for the
	// version into one run (dynamic batching).
	Batching *Batching `json:"batching"`
}

// Batching asks the gateway to fuse concurrent requests for a version into
// one ONNX Runtime call: up to MaxBatchSize rows, gathered for at most
// MaxQueueDelay after the first of them arrives. Only a model whose every
// input and output has a dynamic first dimension (the batch) can batch.
type Batching struct {
	MaxBatchSize  int      `json:"max_batch_size"`
	MaxQueueDelay Duration `json:"max_queue_delay"`
}

// Duration is a time.Duration written in JSON as a Go duration string such
// as "500us" or "2ms".
type Duration = jsondur.Duration

// Bounds of Batching.
const (
	MinBatchSize     = 2
	MaxBatchSize     = 4096
	MaxBatchingDelay = time.Second
)

// check reports whether b is within bounds, naming the field that is not.
func (b *Batching) check() error {
	if b.MaxBatchSize < MinBatchSize || b.MaxBatchSize > MaxBatchSize {
		return invalid("metadata.batching.max_batch_size: must be %d to %d, got %d", MinBatchSize, MaxBatchSize, b.MaxBatchSize)
	}
	if d := time.Duration(b.MaxQueueDelay); d <= 0 || d > MaxBatchingDelay {
		return invalid("metadata.batching.max_queue_delay: must be more than 0 and at most %v (a Go duration such as \"500us\"), got %v", MaxBatchingDelay, d)
	}
	return nil
}

// CheckBatchable reports whether a model of signature sig can batch: every
// input and every tensor output has a dynamic first dimension, the batch.
// An output that is not a tensor (JSON) is a sequence of one map a row. Its
// error matches ErrInvalid and says which input or output cannot.
func CheckBatchable(sig Signature) error {
	for _, in := range sig.Inputs {
		if len(in.Shape) == 0 || in.Shape[0] >= 0 {
			return invalid("metadata.batching: input %s has shape %s; a model batches only when the first dimension of every input and output is dynamic (-1)", in.Name, shapeText(in.Shape))
		}
	}
	for _, out := range sig.Outputs {
		if out.Datatype != "JSON" && (len(out.Shape) == 0 || out.Shape[0] >= 0) {
			return invalid("metadata.batching: output %s has shape %s; a model batches only when the first dimension of every input and output is dynamic (-1)", out.Name, shapeText(out.Shape))
		}
	}
	return nil
}

func shapeText(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Limits on metadata, generous enough for any honest use.
const (
	maxDescription = 16 << 10
	maxTags        = 128
	maxTagKey      = 128
	maxTagValue    = 4096
	maxLineage     = 4096
)

// DecodeMetadata parses and checks the JSON metadata of a registration. Empty
// input means no metadata. Unknown fields, wrong types and values out of bounds
// are errors matching ErrInvalid that name the field.
func DecodeMetadata(data []byte) (Metadata, error) {
	var md Metadata
	if len(bytes.TrimSpace(data)) == 0 {
		return md, nil
	}
	// encoding/json would quietly replace invalid UTF-8 in strings with U+FFFD.
	if !utf8.Valid(data) {
		return Metadata{}, invalid("metadata: not valid UTF-8")
	}
	if err := jsonerr.Decode(data, &md); err != nil {
		return Metadata{}, invalid("metadata: %v", err)
	}
	if err := md.validate(); err != nil {
		return Metadata{}, err
	}
	if string(bytes.TrimSpace(md.FeatureSpec)) == "null" {
		md.FeatureSpec = nil
	}
	if string(bytes.TrimSpace(md.Baseline)) == "null" {
		md.Baseline = nil
	}
	return md, nil
}

func (md *Metadata) validate() error {
	if err := checkText("metadata.description", md.Description, maxDescription); err != nil {
		return err
	}
	if len(md.Tags) > maxTags {
		return invalid("metadata.tags: at most %d tags, got %d", maxTags, len(md.Tags))
	}
	for k, v := range md.Tags {
		if err := CheckTag(k, v); err != nil {
			return invalid("metadata.tags: %s", strings.TrimPrefix(err.Error(), "tag "))
		}
	}
	for _, f := range []struct{ name, value string }{
		{"metadata.lineage.data", md.Lineage.Data},
		{"metadata.lineage.code", md.Lineage.Code},
		{"metadata.lineage.run_id", md.Lineage.RunID},
	} {
		if err := checkText(f.name, f.value, maxLineage); err != nil {
			return err
		}
	}
	if md.Batching != nil {
		return md.Batching.check()
	}
	return nil
}

// CheckTag reports whether key and value make a valid tag. The value of
// "validation_status" must be a Status.
func CheckTag(key, value string) error {
	if err := checkName("tag key", key, maxTagKey, isTagKeyByte); err != nil {
		return err
	}
	if err := checkText("tag "+key, value, maxTagValue); err != nil {
		return err
	}
	if key == TagValidationStatus {
		switch Status(value) {
		case StatusPending, StatusPassed, StatusFailed:
		default:
			return invalid("tag %s: must be one of PENDING, PASSED, FAILED, got %q", key, value)
		}
	}
	return nil
}

func checkText(field, s string, limit int) error {
	if len(s) > limit {
		return invalid("%s: at most %d bytes, got %d", field, limit, len(s))
	}
	if !utf8.ValidString(s) {
		return invalid("%s: not valid UTF-8", field)
	}
	return nil
}
