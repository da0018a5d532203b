package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// A small label universe, so that selectors often match, often miss, and
// destinations often tie on load.
var (
	propKeys   = []string{"env", "region", "tier", "team"}
	propValues = []string{"a", "b", "c", "1", "7"}
	// The current name of a placed request is d-<n>; the others are
	// strangers to it.
	propPrefixes = []string{"d-", "d-", "d-", "d-1", "", "eu-west-1-", strings.Repeat("x", 252)}
)

func randomDestination(r *rand.Rand, i int) Destination {
	d := Destination{
		// Names sometimes repeat, as the linear scan takes the first, and
		// share prefixes of many lengths, which the index's hashing reuses;
		// a few are longer than any Kubernetes name.
		Name:        propPrefixes[r.IntN(len(propPrefixes))] + fmt.Sprint(r.IntN(i+1)),
		Labels:      labels.Set{},
		Ready:       r.IntN(8) != 0,
		Schedulable: r.IntN(8) != 0,
		Deleting:    r.IntN(10) == 0,
		Strict:      r.IntN(6) == 0,
		Capacity:    -1,
		Load:        r.IntN(4),
	}
	if r.IntN(4) == 0 {
		d.Capacity = r.IntN(4)
	}
	for _, k := range propKeys {
		if r.IntN(3) != 0 {
			d.Labels[k] = propValues[r.IntN(len(propValues))]
		}
	}
	if r.IntN(8) == 0 {
		d.Namespaces = labels.SelectorFromSet(labels.Set{"team": propValues[r.IntN(2)]})
	}
	return d
}

func randomValues(r *rand.Rand) []string {
	vals := make([]string, 1+r.IntN(3))
	for i := range vals {
		vals[i] = propValues[r.IntN(len(propValues))]
	}
	return vals
}

// randomSelector builds a Promise-like AND of label selectors as the
// controller does (metav1.LabelSelector), now and then a parsed one with
// the operators LabelSelector cannot express, or labels.Nothing.
func randomSelector(t *testing.T, r *rand.Rand) Selector {
	var s Selector
	for range r.IntN(3) {
		switch r.IntN(10) {
		case 0:
			s.Selectors = append(s.Selectors, labels.Nothing())
			continue
		case 1:
			ops := []string{"%s!=%s", "%s>%s", "%s<%s", "%s==%s"}
			parsed, err := labels.Parse(fmt.Sprintf(ops[r.IntN(len(ops))], propKeys[r.IntN(len(propKeys))], propValues[3+r.IntN(2)]))
			if err != nil {
				t.Fatal(err)
			}
			s.Selectors = append(s.Selectors, parsed)
			s.Explicit = true
			continue
		}
		ls := &metav1.LabelSelector{}
		for range r.IntN(3) {
			if ls.MatchLabels == nil {
				ls.MatchLabels = map[string]string{}
			}
			ls.MatchLabels[propKeys[r.IntN(len(propKeys))]] = propValues[r.IntN(len(propValues))]
		}
		for range r.IntN(3) {
			e := metav1.LabelSelectorRequirement{Key: propKeys[r.IntN(len(propKeys))]}
			switch r.IntN(4) {
			case 0:
				e.Operator, e.Values = metav1.LabelSelectorOpIn, randomValues(r)
			case 1:
				e.Operator, e.Values = metav1.LabelSelectorOpNotIn, randomValues(r)
			case 2:
				e.Operator = metav1.LabelSelectorOpExists
			case 3:
				e.Operator = metav1.LabelSelectorOpDoesNotExist
			}
			ls.MatchExpressions = append(ls.MatchExpressions, e)
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			t.Fatalf("selector %v: %v", ls, err)
		}
		s.Selectors = append(s.Selectors, sel)
		s.Explicit = s.Explicit || len(ls.MatchLabels) > 0 || len(ls.MatchExpressions) > 0
	}
	return s
}

// TestIndexAgreesWithScan: on random destinations and selectors the index
// decides exactly as the linear scan does (destination, reason, message,
// moved) and names the same dependency targets, also after load changes.
func TestIndexAgreesWithScan(t *testing.T) {
	seed := uint64(16)
	r := rand.New(rand.NewPCG(seed, seed))
	const rounds = 1000
	seen := map[string]int{}
	for round := range rounds {
		dests := make([]Destination, r.IntN(150))
		for i := range dests {
			dests[i] = randomDestination(r, i)
		}
		x := NewIndex(dests)
		for q := range 20 {
			if q%5 == 4 && len(dests) > 0 {
				// A placement elsewhere changed a load; loads are by name.
				name, load := dests[r.IntN(len(dests))].Name, r.IntN(5)
				for i := range dests {
					if dests[i].Name == name {
						dests[i].Load = load
					}
				}
				x.SetLoad(name, load)
			}
			req := Request{Key: fmt.Sprintf("K/ns/r-%d", r.IntN(1000)), Selector: randomSelector(t, r),
				Namespace: "ns", NamespaceLabels: labels.Set{"team": propValues[r.IntN(3)]}}
			switch r.IntN(4) {
			case 0:
				req.Current = fmt.Sprintf("d-%d", r.IntN(len(dests)+2))
			}
			want, got := Schedule(req, dests), x.Schedule(req)
			seen[want.Reason]++
			if want.Moved {
				seen["Moved"]++
			}
			if got != want {
				t.Fatalf("seed %d round %d query %d: index decided %+v, scan %+v\nrequest %+v\ndestinations %+v", seed, round, q, got, want, req, dests)
			}
			if want, got := Targets(req.Selector, dests), x.Targets(req.Selector); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d round %d query %d: index targets %v, scan %v\nselector %+v\ndestinations %+v", seed, round, q, got, want, req.Selector, dests)
			}
		}
	}
	// The generator must reach every outcome, or agreement proves little.
	for _, outcome := range []string{Placed, Misplaced, NoMatchingDestination, "Moved"} {
		if seen[outcome] < rounds/10 {
			t.Errorf("only %d of %d decisions were %s: %v", seen[outcome], rounds*20, outcome, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// TestIndexCopiesDestinations: changing the caller's slice after NewIndex
// does not change the index's answers; SetLoad does.
func TestIndexCopiesDestinations(t *testing.T) {
	dests := []Destination{dest("a", "env=dev", 0), dest("b", "env=dev", 5)}
	x := NewIndex(dests)
	dests[0].Load = 10
	req := Request{Key: "k", Selector: sel(t, "env=dev")}
	if got := x.Schedule(req).Destination; got != "a" {
		t.Fatalf("got %s, want a (the caller's later edit must not reach the index)", got)
	}
	if !x.SetLoad("a", 10) || x.SetLoad("missing", 1) {
		t.Fatal("SetLoad reports a wrong result for a known or unknown name")
	}
	if got := x.Schedule(req).Destination; got != "b" {
		t.Fatalf("got %s, want b after SetLoad(a, 10)", got)
	}
}
