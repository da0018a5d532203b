package scheduler

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func sel(t *testing.T, exprs ...string) Selector {
	t.Helper()
	var s Selector
	for _, e := range exprs {
		parsed, err := labels.Parse(e)
		if err != nil {
			t.Fatalf("parse %q: %v", e, err)
		}
		s.Selectors = append(s.Selectors, parsed)
		if e != "" {
			s.Explicit = true
		}
	}
	return s
}

func dest(name string, lbls string, load int) Destination {
	set, _ := labels.ConvertSelectorToLabelsMap(lbls)
	return Destination{Name: name, Labels: labels.Set(set), Ready: true, Schedulable: true, Capacity: -1, Load: load}
}

func TestSchedule(t *testing.T) {
	dev1 := dest("dev-1", "env=dev,region=eu", 2)
	dev2 := dest("dev-2", "env=dev,region=us", 1)
	prod := dest("prod", "env=prod", 0)
	cordoned := dest("dev-3", "env=dev", 0)
	cordoned.Schedulable = false
	full := dest("dev-4", "env=dev", 3)
	full.Capacity = 3
	notReady := dest("dev-5", "env=dev", 0)
	notReady.Ready = false
	strict := dest("special", "env=dev", 0)
	strict.Strict = true
	deleting := dest("dev-6", "env=dev", 0)
	deleting.Deleting = true
	tenant := dest("tenant", "env=dev", 0)
	tenant.Namespaces = labels.SelectorFromSet(labels.Set{"team": "a"})
	teamA := Request{Key: "a", Selector: sel(t, "env=dev"), Namespace: "team-a", NamespaceLabels: labels.Set{"team": "a"}}
	teamB := Request{Key: "a", Selector: sel(t, "env=dev"), Namespace: "team-b", NamespaceLabels: labels.Set{"team": "b"}}
	placedB := teamB
	placedB.Current = "tenant"

	tests := []struct {
		name    string
		req     Request
		dests   []Destination
		want    string
		reason  string
		moved   bool
		message string
	}{
		{name: "namespace admitted", req: teamA, dests: []Destination{dev1, tenant}, want: "tenant", reason: Placed},
		{name: "namespace refused", req: teamB, dests: []Destination{tenant}, reason: NoMatchingDestination,
			message: "none takes requests from namespace team-b"},
		{name: "namespace refused, another destination takes it", req: teamB, dests: []Destination{dev1, tenant}, want: "dev-1", reason: Placed},
		{name: "namespace no longer admitted stays, misplaced", req: placedB, dests: []Destination{dev1, tenant}, want: "tenant", reason: Misplaced,
			message: "no longer takes requests from namespace team-b"},
		{name: "least loaded match", req: Request{Key: "a", Selector: sel(t, "env=dev")},
			dests: []Destination{dev1, dev2, prod}, want: "dev-2", reason: Placed, message: "least loaded of 2"},
		{name: "set-based expression", req: Request{Key: "a", Selector: sel(t, "env in (dev,prod),region notin (us)")},
			dests: []Destination{dev1, dev2, prod}, want: "prod", reason: Placed},
		{name: "AND of promise and request selectors", req: Request{Key: "a", Selector: sel(t, "env=dev", "region=eu")},
			dests: []Destination{dev1, dev2, prod}, want: "dev-1", reason: Placed},
		{name: "no match waits", req: Request{Key: "a", Selector: sel(t, "env=staging")},
			dests: []Destination{dev1, prod}, reason: NoMatchingDestination, message: "none of 2 destination(s) match"},
		{name: "cordoned full not-ready deleting are skipped", req: Request{Key: "a", Selector: sel(t, "env=dev")},
			dests: []Destination{cordoned, full, notReady, deleting}, reason: NoMatchingDestination,
			message: "1 not ready, 1 cordoned, 1 full, 1 deleting"},
		{name: "strict needs explicit selector", req: Request{Key: "a", Selector: sel(t, "")},
			dests: []Destination{strict}, reason: NoMatchingDestination},
		{name: "strict takes explicit selector", req: Request{Key: "a", Selector: sel(t, "env=dev")},
			dests: []Destination{strict, dev1}, want: "special", reason: Placed},
		{name: "sticky even when more loaded", req: Request{Key: "a", Selector: sel(t, "env=dev"), Current: "dev-1"},
			dests: []Destination{dev1, dev2}, want: "dev-1", reason: Placed},
		{name: "sticky on cordoned destination", req: Request{Key: "a", Selector: sel(t, "env=dev"), Current: "dev-3"},
			dests: []Destination{cordoned, dev2}, want: "dev-3", reason: Placed},
		{name: "misplaced stays", req: Request{Key: "a", Selector: sel(t, "env=prod"), Current: "dev-1"},
			dests: []Destination{dev1, prod}, want: "dev-1", reason: Misplaced},
		{name: "deleted destination reschedules", req: Request{Key: "a", Selector: sel(t, "env=dev"), Current: "gone"},
			dests: []Destination{dev1, dev2}, want: "dev-2", reason: Placed, moved: true, message: "rescheduled from gone"},
		{name: "deleting destination reschedules", req: Request{Key: "a", Selector: sel(t, "env=dev"), Current: "dev-6"},
			dests: []Destination{deleting, dev1}, want: "dev-1", reason: Placed, moved: true},
		{name: "deleted destination and nothing else waits", req: Request{Key: "a", Selector: sel(t, "env=dev"), Current: "gone"},
			dests: []Destination{prod}, reason: NoMatchingDestination, moved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.req, tt.dests)
			if got.Destination != tt.want || got.Reason != tt.reason || got.Moved != tt.moved {
				t.Fatalf("got %+v, want destination %q reason %s moved %v", got, tt.want, tt.reason, tt.moved)
			}
			if !strings.Contains(got.Message, tt.message) {
				t.Fatalf("message %q does not contain %q", got.Message, tt.message)
			}
		})
	}
}

func TestScheduleTieBreakIsStableAndSpreads(t *testing.T) {
	dests := []Destination{dest("a", "", 0), dest("b", "", 0), dest("c", "", 0)}
	counts := map[string]int{}
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("ns/req-%d", i)
		first := Schedule(Request{Key: key}, dests)
		again := Schedule(Request{Key: key}, dests)
		if first != again {
			t.Fatalf("not deterministic for %s: %+v then %+v", key, first, again)
		}
		counts[first.Destination]++
	}
	for _, d := range dests {
		if counts[d.Name] < 60 {
			t.Fatalf("tie-break does not spread: %v", counts)
		}
	}
}

func TestTargets(t *testing.T) {
	strict := dest("strict", "env=dev", 0)
	strict.Strict = true
	cordoned := dest("cordoned", "env=dev", 0)
	cordoned.Schedulable = false
	deleting := dest("deleting", "env=dev", 0)
	deleting.Deleting = true
	dests := []Destination{dest("b", "env=dev", 0), dest("a", "env=dev", 0), dest("p", "env=prod", 0), strict, cordoned, deleting}

	got := strings.Join(Targets(sel(t, "env=dev"), dests), ",")
	if got != "a,b,cordoned,strict" {
		t.Fatalf("explicit selector: got %s", got)
	}
	got = strings.Join(Targets(sel(t), dests), ",")
	if got != "a,b,cordoned,p" {
		t.Fatalf("empty selector: got %s", got)
	}
}

// benchDestinations are n Ready destinations, all labelled env=dev (so
// every one is a candidate for the benchmark's request) with 10,000
// requests spread evenly over them: every decision is a tie among all n.
func benchDestinations(n int) []Destination {
	dests := make([]Destination, n)
	for i := range dests {
		dests[i] = dest(fmt.Sprintf("d-%d", i), fmt.Sprintf("env=dev,zone=z%d", i%10), 10000/n)
	}
	return dests
}

// benchDecisions runs b.N decisions of a request selecting env=dev with
// the keys of 10,000 requests.
func benchDecisions(b *testing.B, schedule func(Request) Decision) {
	s, _ := labels.Parse("env=dev")
	req := Request{Selector: Selector{Selectors: []labels.Selector{s}, Explicit: true}}
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("DynamoDBRequest/team-%d/r-%d", i%50, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Key = keys[i%len(keys)]
		schedule(req)
	}
}

// BenchmarkSchedule measures a decision through the Index, the way the
// router decides.
func BenchmarkSchedule(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("destinations=%d", n), func(b *testing.B) {
			x := NewIndex(benchDestinations(n))
			benchDecisions(b, x.Schedule)
		})
	}
}

// BenchmarkScheduleScan measures the linear scan, Schedule(req, dests).
func BenchmarkScheduleScan(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("destinations=%d", n), func(b *testing.B) {
			dests := benchDestinations(n)
			benchDecisions(b, func(req Request) Decision { return Schedule(req, dests) })
		})
	}
}

// BenchmarkNewIndex measures building the index, paid once per change of
// the destinations rather than per decision.
func BenchmarkNewIndex(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("destinations=%d", n), func(b *testing.B) {
			dests := benchDestinations(n)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				NewIndex(dests)
			}
		})
	}
}
