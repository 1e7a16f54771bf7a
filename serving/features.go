package serving

import (
	"context"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/serving/onnx"
)

// The registry and the feature store do not know each other; these adapters
// let each ask the other what it needs.

// SpecChecker judges the feature specs of registrations with the feature
// store's views.
func SpecChecker(fs *featurestore.Service) registry.SpecChecker { return specChecker{fs} }

type specChecker struct{ fs *featurestore.Service }

func (c specChecker) CheckSpec(ctx context.Context, raw []byte, sig registry.Signature) error {
	spec, err := featurestore.DecodeSpec(raw)
	if err != nil {
		return err
	}
	_, err = c.fs.Compile(spec, specInputs(sig.Inputs))
	return err
}

func specInputs(ts []registry.TensorSpec) []featurestore.Input {
	out := make([]featurestore.Input, len(ts))
	for i, t := range ts {
		out[i] = featurestore.Input{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
	}
	return out
}

// SpecUsers lists the registered versions that read features, for the
// feature store to check view changes against.
func SpecUsers(reg *registry.Registry) func(ctx context.Context) ([]featurestore.SpecUse, error) {
	return func(ctx context.Context) ([]featurestore.SpecUse, error) {
		models, err := reg.Models(ctx)
		if err != nil {
			return nil, err
		}
		var uses []featurestore.SpecUse
		for _, m := range models {
			for _, v := range m.Versions {
				if len(v.FeatureSpec) == 0 {
					continue
				}
				spec, err := featurestore.DecodeSpec(v.FeatureSpec)
				if err != nil {
					return nil, err
				}
				uses = append(uses, featurestore.SpecUse{Model: v.Name, Version: v.Version, Spec: spec, Inputs: specInputs(v.Signature.Inputs)})
			}
		}
		return uses, nil
	}
}

// FeaturePlanner compiles feature specs for the catalog.
func FeaturePlanner(fs *featurestore.Service) Planner {
	return func(raw []byte, ios []onnx.IO) (*featurestore.Plan, error) {
		spec, err := featurestore.DecodeSpec(raw)
		if err != nil {
			return nil, err
		}
		inputs := make([]featurestore.Input, len(ios))
		for i, io := range ios {
			inputs[i] = featurestore.Input{Name: io.Name, Datatype: io.Type.String(), Shape: io.Shape}
		}
		return fs.Compile(spec, inputs)
	}
}
