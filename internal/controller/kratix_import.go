package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// importedSpec is the shape of a Kratix Promise's spec that Switchyard
// imports: every field of a spec is checked against it, so a field it does
// not have, at any depth, is one Switchyard does not support.
type importedSpec struct {
	API                  any                                `json:"api"`
	Dependencies         []any                              `json:"dependencies"`
	DestinationSelectors []kratixv1alpha1.PromiseScheduling `json:"destinationSelectors"`
	Workflows            v1alpha1.Workflows                 `json:"workflows"`
}

// walkedAs gives fields the walk checks against another type than their
// own: a pipeline's volumes are kept raw in Switchyard's types but are
// core/v1 Volumes, and a field core/v1 does not know is named at import.
var walkedAs = map[reflect.Type]map[string]reflect.Type{
	reflect.TypeOf(v1alpha1.PipelineSpec{}): {"volumes": reflect.TypeOf([]corev1.Volume{})},
}

// errNoAPI: Kratix allows a Promise without an API (dependencies only);
// a Switchyard Promise serves a request kind, so it needs one.
var errNoAPI = fmt.Errorf("spec.api is missing: a Switchyard Promise needs a request API")

// UnsupportedFields lists the paths (spec.requiredPromises,
// spec.workflows.resource.configure[0].spec.rbac.serviceAccount) of every
// field of a Kratix Promise's raw spec that Switchyard does not import,
// sorted. A field's own fields are not listed once the field is.
func UnsupportedFields(rawSpec []byte) ([]string, error) {
	if len(bytes.TrimSpace(rawSpec)) == 0 {
		return nil, nil
	}
	var spec any
	if err := json.Unmarshal(rawSpec, &spec); err != nil {
		return nil, fmt.Errorf("spec is not JSON: %w", err)
	}
	paths := unknownFields("spec", spec, reflect.TypeOf(importedSpec{}))
	sort.Strings(paths)
	return paths, nil
}

// unknownFields walks the decoded JSON v against the Go type t, as
// encoding/json would decode it, and returns the paths of object keys t
// has no field for. Values whose type does not match t are skipped:
// decoding reports those.
func unknownFields(path string, v any, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if decodesItself(t) {
		return nil
	}
	var out []string
	switch t.Kind() {
	case reflect.Struct:
		m, _ := v.(map[string]any)
		fields := jsonFields(t)
		for name, ft := range walkedAs[t] {
			fields[name] = ft
		}
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, unknownFields(path+"."+k, m[k], ft)...)
		}
	case reflect.Slice, reflect.Array:
		s, _ := v.([]any)
		for i := range s {
			out = append(out, unknownFields(fmt.Sprintf("%s[%d]", path, i), s[i], t.Elem())...)
		}
	case reflect.Map:
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			out = append(out, unknownFields(path+"."+k, m[k], t.Elem())...)
		}
	}
	return out
}

// decodesItself reports whether t is decoded by its own UnmarshalJSON
// (Quantity, IntOrString, RawExtension, Time) or takes any JSON (any):
// the walk does not look inside.
func decodesItself(t reflect.Type) bool {
	unmarshaler := reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	return t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshaler)
}

// jsonFields maps the JSON names of struct t's fields to their types,
// with embedded and ",inline" structs' fields lifted, as encoding/json
// does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			for k, v := range jsonFields(et) {
				out[k] = v
			}
		case !f.IsExported():
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decodeWorkflows decodes Kratix workflows strictly into Switchyard's.
// Unknown fields are caught by UnsupportedFields first; this catches
// values of the wrong type. Workflows without a pipeline are nil.
func decodeWorkflows(raw []byte) (*v1alpha1.Workflows, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w v1alpha1.Workflows
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("spec.workflows: %w", err)
	}
	if pipelines(w.Resource)+pipelines(w.Promise) == 0 {
		return nil, nil
	}
	return &w, nil
}

func pipelines(a *v1alpha1.WorkflowActions) int {
	if a == nil {
		return 0
	}
	return len(a.Configure) + len(a.Delete)
}

// ImportedSpec is the Switchyard Promise spec a Kratix Promise imports
// into. It does not check for unsupported fields: UnsupportedFields does.
func ImportedSpec(k *kratixv1alpha1.Promise) (v1alpha1.PromiseSpec, error) {
	var spec v1alpha1.PromiseSpec
	if k.Spec.API == nil || len(k.Spec.API.Raw) == 0 {
		return spec, errNoAPI
	}
	spec.API = *k.Spec.API.DeepCopy()
	for _, d := range k.Spec.Dependencies {
		spec.Dependencies = append(spec.Dependencies, *d.DeepCopy())
	}
	for _, s := range k.Spec.DestinationSelectors {
		// Kratix merges its selectors' labels; requiring each selector
		// is the same unless two give one key different values.
		spec.DestinationSelectors = append(spec.DestinationSelectors,
			metav1.LabelSelector{MatchLabels: s.MatchLabels, MatchExpressions: s.MatchExpressions})
	}
	if k.Spec.Workflows != nil {
		w, err := decodeWorkflows(k.Spec.Workflows.Raw)
		if err != nil {
			return spec, err
		}
		spec.Workflows = w
	}
	return spec, nil
}

// sameSpec compares two Promise specs as JSON values, so that an embedded
// object the API server re-serialised with its keys in another order is
// still the same.
func sameSpec(a, b v1alpha1.PromiseSpec) bool {
	va, erra := jsonValue(a)
	vb, errb := jsonValue(b)
	return erra == nil && errb == nil && reflect.DeepEqual(va, vb)
}

func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}
