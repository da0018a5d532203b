package readiness

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name  string
		rules v1alpha1.StatusRules
		want  string // in the error
	}{
		{"syntax", v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"arn": "${table.status.}"}}, `status.outputs.arn "${table.status.}"`},
		{"unknown template", v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"arn": "${tabel.status.arn}"}}, "undeclared reference to 'tabel'"},
		{"not bool", v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${table.metadata.name + 'x'}"}}, "must be a bool, is a string"},
		{"int not bool", v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${1 + 2}"}}, "status.readyWhen[0]"},
		{"not wrapped", v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"true"}}, "one ${...}"},
		{"no ${", v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"true}"}}, "one ${...}"},
		{"two expressions", v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"x": "${table.a}-${table.b}"}}, "status.outputs.x"},
		{"column", v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"x": "${table.a}"},
			PrinterColumns: []v1alpha1.OutputColumn{{Name: "Y", Output: "y"}}}, "names no output"},
	}
	for _, tt := range tests {
		_, err := Compile(&tt.rules, []string{"table", "network-policy"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	ok := v1alpha1.StatusRules{
		Outputs:   map[string]v1alpha1.Expression{"arn": "${table.status.ackResourceMetadata.arn}", "np": "${network_policy.metadata.name}"},
		ReadyWhen: []v1alpha1.Expression{"${table.status.conditions.exists(c, c.type == 'ACK.ResourceSynced' && c.status == 'True')}"},
	}
	if _, err := Compile(&ok, []string{"table", "network-policy"}); err != nil {
		t.Errorf("valid rules refused: %v", err)
	}
}

func obj(kind, ns, name string, content map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range content {
		u.Object[k] = v
	}
	u.SetAPIVersion("v1")
	if kind == "Deployment" {
		u.SetAPIVersion("apps/v1")
	}
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestEvaluate(t *testing.T) {
	table := func(status map[string]any) Object {
		o := Object{Template: "table", GVK: schema.GroupVersionKind{Group: "dynamodb.services.k8s.aws", Version: "v1alpha1", Kind: "Table"}, Namespace: "ddb", Name: "t"}
		if status != nil {
			o.Live = obj("Table", "ddb", "t", map[string]any{"status": status})
		}
		return o
	}
	synced := map[string]any{"ackResourceMetadata": map[string]any{"arn": "arn:1"}, "tableStatus": "ACTIVE",
		"conditions": []any{map[string]any{"type": "ACK.ResourceSynced", "status": "True"}}}
	notSynced := map[string]any{"tableStatus": "CREATING", "conditions": []any{map[string]any{"type": "ACK.ResourceSynced", "status": "False"}}}
	ddb, err := Compile(&v1alpha1.StatusRules{
		Outputs: map[string]v1alpha1.Expression{"tableArn": "${table.status.ackResourceMetadata.arn}", "tableStatus": "${table.status.tableStatus}",
			"keys": "${table.status.conditions.map(c, c.type)}"},
		ReadyWhen: []v1alpha1.Expression{"${table.status.conditions.exists(c, c.type == 'ACK.ResourceSynced' && c.status == 'True')}"},
	}, []string{"table"})
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(ns string, status map[string]any) Object {
		o := Object{Template: "web", GVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespace: ns, Name: "web"}
		o.Live = obj("Deployment", ns, "web", map[string]any{"spec": map[string]any{"replicas": int64(1)}, "status": status})
		o.Live.SetGeneration(1)
		return o
	}
	quota := Object{Template: "quota", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ResourceQuota"}, Namespace: "team", Name: "q",
		Live: obj("ResourceQuota", "team", "q", nil)}
	tests := []struct {
		name    string
		rules   *Rules
		objs    []Object
		ready   bool
		reason  string
		message string
		outputs map[string]string
	}{
		{"synced", ddb, []Object{table(synced)}, true, v1alpha1.ResourcesReady, "readyWhen",
			map[string]string{"tableArn": "arn:1", "tableStatus": "ACTIVE", "keys": `["ACK.ResourceSynced"]`}},
		{"not synced", ddb, []Object{table(notSynced)}, false, v1alpha1.ReadyWhenNotMet, "status.readyWhen[0]",
			map[string]string{"tableStatus": "CREATING", "keys": `["ACK.ResourceSynced"]`}},
		{"no status yet", ddb, []Object{table(map[string]any{})}, false, v1alpha1.ReadyWhenNotMet, "no such key", nil},
		{"missing", ddb, []Object{table(nil)}, false, v1alpha1.ResourceNotFound, "Table ddb/t: NotFound", nil},
		{"kstatus current", &Rules{}, []Object{quota}, true, v1alpha1.ResourcesReady, "Current", nil},
		{"kstatus in progress", &Rules{}, []Object{quota, deploy("team", nil)}, false, v1alpha1.ResourceInProgress, "Deployment team/web: InProgress", nil},
		{"kstatus available", nil, []Object{quota, deploy("team", map[string]any{"observedGeneration": int64(1), "replicas": int64(1),
			"updatedReplicas": int64(1), "readyReplicas": int64(1), "availableReplicas": int64(1),
			"conditions": []any{map[string]any{"type": "Available", "status": "True"}}})}, true, v1alpha1.ResourcesReady, "", nil},
	}
	for _, tt := range tests {
		res := tt.rules.Evaluate(context.Background(), tt.objs)
		if res.Ready != tt.ready || res.Reason != tt.reason || !strings.Contains(res.Message, tt.message) {
			t.Errorf("%s: %t %s %q; want %t %s containing %q", tt.name, res.Ready, res.Reason, res.Message, tt.ready, tt.reason, tt.message)
		}
		if len(res.Outputs) != len(tt.outputs) {
			t.Errorf("%s: outputs %v, want %v", tt.name, res.Outputs, tt.outputs)
		}
		for k, v := range tt.outputs {
			if res.Outputs[k] != v {
				t.Errorf("%s: outputs %v, want %v", tt.name, res.Outputs, tt.outputs)
			}
		}
	}
}

// An expression over a template that renders two objects is refused at
// evaluation, naming the template, rather than reading either one.
func TestEvaluateTwoObjectsOfOneTemplate(t *testing.T) {
	r, err := Compile(&v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${web.metadata.name == 'a'}"}}, []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	a := Object{Template: "web", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "n", Name: "a", Live: obj("ConfigMap", "n", "a", nil)}
	b := a
	b.Name, b.Live = "b", obj("ConfigMap", "n", "b", nil)
	res := r.Evaluate(context.Background(), []Object{a, b})
	if res.Ready || !strings.Contains(res.Message, "renders 2 objects") {
		t.Errorf("%t %s %q", res.Ready, res.Reason, res.Message)
	}
}
