package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// FuzzRequestSelector feeds hostile selectors (from a Promise and from a
// request) through the code that builds a request's placement selector.
// Properties: it never panics; what it accepts, it means: the request's
// own labels are required exactly, and every selector survives a round
// trip through its string form.
func FuzzRequestSelector(f *testing.F) {
	f.Add("env", "In", "dev,prod", "region", "eu")
	f.Add("env", "NotIn", "", "a/b", "c")
	f.Add("", "Exists", "x", "", "")
	f.Add("k", "DoesNotExist", "", "k", "v")
	f.Add("k", "Gt", "1", "kk", "=v")
	f.Add("x,y", "In", "a b", "r!", "v\n")
	f.Fuzz(func(t *testing.T, key, op, values, reqKey, reqValue string) {
		var vals []string
		if values != "" {
			vals = strings.Split(values, ",")
		}
		p := &v1alpha1.Promise{Spec: v1alpha1.PromiseSpec{DestinationSelectors: []metav1.LabelSelector{{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOperator(op), Values: vals}}}}}}
		obj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
			v1alpha1.DestinationSelectorField: map[string]any{reqKey: reqValue}}}}
		s, err := requestSelector(p, obj)
		if err != nil {
			return
		}
		if len(s.Selectors) != 2 || !s.Explicit {
			t.Fatalf("accepted selector %+v: want the Promise's and the request's", s)
		}
		mine := s.Selectors[1]
		if !mine.Matches(labels.Set{reqKey: reqValue}) || mine.Matches(labels.Set{reqKey: reqValue + "x"}) {
			t.Fatalf("request selector %q does not require %s=%s exactly", mine, reqKey, reqValue)
		}
		for _, sel := range s.Selectors {
			back, err := labels.Parse(sel.String())
			if err != nil {
				t.Fatalf("selector %q does not parse back: %v", sel, err)
			}
			set := labels.Set{key: strings.Join(vals, ""), reqKey: reqValue}
			if back.Matches(set) != sel.Matches(set) {
				t.Fatalf("selector %q means something else after a round trip", sel)
			}
		}
	})
}
