package controller

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// The objects a request rendered, in the order of the Promise's
// templates, each with the template that rendered it.
func TestRenderedObjects(t *testing.T) {
	p := &v1alpha1.Promise{Spec: v1alpha1.PromiseSpec{Resources: []v1alpha1.ResourceTemplate{{Name: "ns"}, {Name: "two"}, {Name: "none"}}}}
	files := map[string][]byte{
		"two.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n"),
		"ns.yaml":  []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"),
	}
	got := renderedObjects(p, files)
	want := []string{"ns Namespace x", "two ConfigMap x/a", "two Deployment b"}
	if len(got) != len(want) {
		t.Fatalf("%d objects, want %d: %+v", len(got), len(want), got)
	}
	for i, o := range got {
		if s := o.Template + " " + o.ID(); s != want[i] {
			t.Errorf("object %d: %q, want %q", i, s, want[i])
		}
	}
	if got[2].GVK.Group != "apps" || got[2].GVK.Version != "v1" {
		t.Errorf("GVK %v", got[2].GVK)
	}
}

// The request CRD has the generic status schema (outputs, verified, no
// DynamoDB field) and the Promise author's printer columns on outputs.
func TestRequestCRDOutputs(t *testing.T) {
	api, _ := json.Marshal(map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "things.example.com"},
		"spec": map[string]any{"group": "example.com", "scope": "Namespaced",
			"names": map[string]any{"kind": "Thing", "plural": "things"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{"spec": map[string]any{"type": "object"}}}}}}}})
	p := &v1alpha1.Promise{Spec: v1alpha1.PromiseSpec{API: runtime.RawExtension{Raw: api},
		Status: &v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"url": "${svc.spec.clusterIP}"},
			PrinterColumns: []v1alpha1.OutputColumn{{Name: "URL", Output: "url", Priority: 1}}}}}
	crd, _, err := RequestCRD(p)
	if err != nil {
		t.Fatal(err)
	}
	v := crd.Spec.Versions[0]
	status := v.Schema.OpenAPIV3Schema.Properties["status"]
	for _, f := range []string{"outputs", "verified"} {
		if s, ok := status.Properties[f]; !ok || s.AdditionalProperties == nil || s.AdditionalProperties.Schema.Type != "string" {
			t.Errorf("status.%s: %+v, want a map of strings", f, s)
		}
	}
	for _, f := range []string{"tableArn", "tableStatus"} {
		if _, ok := status.Properties[f]; ok {
			t.Errorf("status.%s is in the generic schema", f)
		}
	}
	found := false
	for _, c := range v.AdditionalPrinterColumns {
		found = found || (c.Name == "URL" && c.JSONPath == ".status.outputs.url" && c.Priority == 1)
	}
	if !found {
		t.Errorf("printer columns %+v: want URL at .status.outputs.url", v.AdditionalPrinterColumns)
	}
}

// A Promise deleted and created again under the same name starts at
// generation 1 again, and its kind's reconciler lives on: the compiled
// rules must be the new Promise's, not those its predecessor left.
func TestRulesFollowThePromiseNotItsGeneration(t *testing.T) {
	promise := func(uid, readyWhen string) *v1alpha1.Promise {
		p := &v1alpha1.Promise{Spec: v1alpha1.PromiseSpec{
			Resources: []v1alpha1.ResourceTemplate{{Name: "table"}},
			Status:    &v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{v1alpha1.Expression(readyWhen)}},
		}}
		p.Name, p.UID, p.Generation = "dynamodb", types.UID(uid), 1
		return p
	}
	r := &RequestReconciler{}
	if _, err := r.rules(promise("old", "${nosuch.status}")); err == nil {
		t.Fatal("the first Promise's expression names no template, yet it compiled")
	}
	if _, err := r.rules(promise("new", "${table.status.ready == true}")); err != nil {
		t.Errorf("the Promise created again under the same name, at generation 1, has valid rules but got its predecessor's error: %v", err)
	}
}
