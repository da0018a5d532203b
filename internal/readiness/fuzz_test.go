package readiness

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// hostileRules read what an object's author controls, in the ways that
// cost the most: whole subtrees as JSON, string operations on long
// strings, and nested loops over long lists (quadratic, stopped by the
// cost limit).
var hostileRules = v1alpha1.StatusRules{
	Outputs: map[string]v1alpha1.Expression{
		"whole":  "${obj.status}",
		"name":   "${obj.status.name}",
		"upper":  "${obj.status.name + obj.status.name}",
		"deep":   "${obj.status.nested}",
		"square": "${obj.status.items.map(x, obj.status.items.map(y, x + y))}",
	},
	ReadyWhen: []v1alpha1.Expression{
		"${obj.status.items.all(x, obj.status.items.all(y, x.size() >= 0))}",
		"${obj.status.name.matches('^(a+)+$')}",
		"${obj.status.ready == true}",
	},
}

// hostile builds an object from fuzz input: a string repeated n times (up
// to 1 MiB: the API server stores no object over 1.5 MiB), a nesting
// depth and a list length.
func hostile(s string, n, depth, items uint16) *unstructured.Unstructured {
	name := strings.Repeat(s+"a", min(int(n), (1<<20)/(len(s)+1)))
	nested := map[string]any{"leaf": s}
	for range int(depth) % 3000 {
		nested = map[string]any{"n": nested, "s": s}
	}
	list := make([]any, int(items)%1000)
	for i := range list {
		list[i] = name[:min(len(name), 64)]
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "x", "namespace": "y"},
		"status":   map[string]any{"name": name, "nested": nested, "items": list, "ready": len(s)%2 == 0}}}
	return u
}

func FuzzEvaluate(f *testing.F) {
	rules, err := Compile(&hostileRules, []string{"obj"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", uint16(0), uint16(0), uint16(0))
	f.Add("ab", uint16(19999), uint16(2999), uint16(2999))
	f.Add(strings.Repeat("a", 300)+"!", uint16(5000), uint16(10), uint16(500))
	f.Fuzz(func(t *testing.T, s string, n, depth, items uint16) {
		o := Object{Template: "obj", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "y", Name: "x", Live: hostile(s, n, depth, items)}
		start := time.Now()
		res := rules.Evaluate(context.Background(), []Object{o})
		// A guard against a hang, generous for -race on a busy machine
		// (about 1 s there without -race for the largest inputs).
		if d := time.Since(start); d > time.Minute {
			t.Errorf("evaluation took %s", d)
		}
		for k, v := range res.Outputs {
			if len(v) > maxOutput {
				t.Errorf("output %s has %d bytes, more than %d", k, len(v), maxOutput)
			}
		}
		if len(res.Message) > 2*maxMessage+len(hostileRules.ReadyWhen[0])+200 {
			t.Errorf("message of %d bytes", len(res.Message))
		}
		if res.Reason == "" {
			t.Error("no reason")
		}
	})
}

// The cost limit stops a quadratic expression over a long list, as the API
// server's CEL does, instead of letting an object's author spend the
// router's CPU.
func TestCostLimitStopsQuadratic(t *testing.T) {
	rules, err := Compile(&v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{
		"${obj.status.items.all(x, obj.status.items.all(y, x.size() >= 0))}"}}, []string{"obj"})
	if err != nil {
		t.Fatal(err)
	}
	o := Object{Template: "obj", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "y", Name: "x", Live: hostile("b", 10, 0, 2999)}
	res := rules.Evaluate(context.Background(), []Object{o})
	if res.Ready || !strings.Contains(res.Message, "cost limit") {
		t.Errorf("%t %s %q: want a cost limit error", res.Ready, res.Reason, res.Message)
	}
}

// The cost budget spans all of one request's expressions, as the API
// server's does for a CRD's rules: eleven expressions each under the
// per-call limit but together over the request's budget are not all
// true, however cheap each one alone.
func TestCostBudgetSpansTheRequest(t *testing.T) {
	const expr = "${obj.status.items.all(x, obj.status.items.all(y, x.size() >= 0))}"
	one, err := Compile(&v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{expr}}, []string{"obj"})
	if err != nil {
		t.Fatal(err)
	}
	// The most items whose one evaluation stays under the per-call limit.
	items, cost := uint16(0), uint64(0)
	for n := uint16(100); n < 1000; n += 10 {
		vars, counts := activation([]Object{{Template: "obj", Live: hostile("b", 10, 0, n)}})
		budget := uint64(perCallLimit)
		if _, err := one.readyWhen[0].eval(context.Background(), vars, counts, &budget); err != nil {
			break
		}
		items, cost = n, perCallLimit-budget
	}
	calls := int(totalLimit/cost) + 1
	if calls > 16 {
		t.Fatalf("one call costs %d at %d items: too cheap to reach the budget with 16 expressions", cost, items)
	}
	many := make([]v1alpha1.Expression, calls)
	for i := range many {
		many[i] = expr
	}
	rules, err := Compile(&v1alpha1.StatusRules{ReadyWhen: many}, []string{"obj"})
	if err != nil {
		t.Fatal(err)
	}
	o := Object{Template: "obj", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "y", Name: "x", Live: hostile("b", 10, 0, items)}
	res := rules.Evaluate(context.Background(), []Object{o})
	if res.Ready || !strings.Contains(res.Message, "cost budget") {
		t.Errorf("%d expressions of cost %d each (budget %d): %t %s %q; want the budget exceeded", calls, cost, uint64(totalLimit), res.Ready, res.Reason, res.Message)
	}
}
