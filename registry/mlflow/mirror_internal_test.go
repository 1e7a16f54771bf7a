package mlflow

import (
	"strings"
	"testing"
)

// TestMetadataOf: what mlgate keeps of an MLflow version beside its file.
func TestMetadataOf(t *testing.T) {
	spec := `{"entities":["user_id"],"inputs":{"x":["user:age"]}}`
	tests := []struct {
		name     string
		tags     map[string]string
		file     string
		wantSpec string
		wantBase string
		err      string
	}{
		{name: "plain", tags: map[string]string{"team": "risk"}},
		{name: "spec from a tag", tags: map[string]string{TagFeatureSpec: spec}, wantSpec: spec},
		{name: "baseline from the file", file: `{"baseline": {"features": {}}}`, wantBase: `{"features": {}}`},
		{name: "the tag wins over the file", tags: map[string]string{TagFeatureSpec: spec}, file: `{"feature_spec": {"entities": []}}`, wantSpec: spec},
		{name: "file not JSON", file: `nope`, err: "its mlgate.json is not a JSON object"},
		{name: "spec tag not JSON", tags: map[string]string{TagFeatureSpec: "{"}, err: "its mlgate.* tags: "},
		{name: "a tag mlgate cannot hold is left out", tags: map[string]string{"bad key!": "v", "ok": "v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Fetched{From: "mlflow-artifacts:/0/r/artifacts/model/model.onnx"}
			if tt.file != "" {
				f.Metadata = []byte(tt.file)
			}
			md, err := metadataOf(Version{Model: "m", Number: 1, RunID: "r1", Source: "runs:/r1/model", Description: "d", Tags: tt.tags}, f)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.Description != "d" || md.Lineage.RunID != "r1" || md.Lineage.Code != "runs:/r1/model" || md.Tags["mlflow.artifact"] != f.From {
				t.Errorf("metadata %+v", md)
			}
			if string(md.FeatureSpec) != tt.wantSpec || string(md.Baseline) != tt.wantBase {
				t.Errorf("spec %s, baseline %s; want %s, %s", md.FeatureSpec, md.Baseline, tt.wantSpec, tt.wantBase)
			}
			if _, ok := md.Tags["bad key!"]; ok {
				t.Error("a tag key mlgate refuses was kept")
			}
		})
	}
}
