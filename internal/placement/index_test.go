package placement

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/internal/scheduler"
)

var (
	tables = schema.GroupKind{Group: "aws.switchyard.dev", Kind: "DynamoDBRequest"}
	queues = schema.GroupKind{Group: "test.switchyard.dev", Kind: "QueueRequest"}
)

func key(gk schema.GroupKind, name string) Key {
	return Key{GroupKind: gk, NamespacedName: types.NamespacedName{Namespace: "team", Name: name}}
}

// op is one call on the index.
type op func(i *Index)

func assign(k Key, dest string) op {
	return func(i *Index) { i.Assign(k, func(func(string) int) string { return dest }) }
}
func seed(k Key, dest string) op { return func(i *Index) { i.Seed(k, dest) } }
func forget(k Key) op            { return func(i *Index) { i.Forget(k) } }

func TestIndex(t *testing.T) {
	a, b, q := key(tables, "a"), key(tables, "b"), key(queues, "q")
	tests := []struct {
		name string
		ops  []op
		// load per destination, and the requests of kind tables concerned
		// by a change to destination "d1"
		load      map[string]int
		concerned []string
	}{
		{name: "empty", load: map[string]int{"d1": 0}},
		{name: "assign counts", ops: []op{assign(a, "d1"), assign(b, "d1")}, load: map[string]int{"d1": 2, "d2": 0}, concerned: []string{"a", "b"}},
		{name: "assign again is idempotent", ops: []op{assign(a, "d1"), assign(a, "d1")}, load: map[string]int{"d1": 1}, concerned: []string{"a"}},
		{name: "move leaves the old destination", ops: []op{assign(a, "d1"), assign(a, "d2")}, load: map[string]int{"d1": 0, "d2": 1}},
		{name: "no destination waits and frees the old one", ops: []op{assign(a, "d1"), assign(a, "")}, load: map[string]int{"d1": 0}, concerned: []string{"a"}},
		{name: "placing stops waiting", ops: []op{assign(a, ""), assign(a, "d2")}, load: map[string]int{"d2": 1}},
		{name: "forget frees", ops: []op{assign(a, "d1"), assign(b, ""), forget(a), forget(b)}, load: map[string]int{"d1": 0}},
		{name: "forget unknown is harmless", ops: []op{forget(a)}, load: map[string]int{"d1": 0}},
		{name: "kinds share loads but not wakes", ops: []op{assign(a, "d1"), assign(q, "d1")}, load: map[string]int{"d1": 2}, concerned: []string{"a"}},
		{name: "seed counts an unknown request", ops: []op{seed(a, "d1")}, load: map[string]int{"d1": 1}, concerned: []string{"a"}},
		{name: "seed keeps a decision made since", ops: []op{assign(a, "d2"), seed(a, "d1")}, load: map[string]int{"d1": 0, "d2": 1}},
		{name: "seed keeps a request waiting", ops: []op{assign(a, ""), seed(a, "d1")}, load: map[string]int{"d1": 0}, concerned: []string{"a"}},
		{name: "seed without destination records nothing", ops: []op{seed(a, "")}, load: map[string]int{"d1": 0}},
		{name: "seed twice counts once", ops: []op{seed(a, "d1"), seed(a, "d1")}, load: map[string]int{"d1": 1}, concerned: []string{"a"}},
		{name: "forget after seed frees", ops: []op{seed(a, "d1"), forget(a)}, load: map[string]int{"d1": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := New()
			for _, o := range tt.ops {
				o(i)
			}
			for d, want := range tt.load {
				if got := i.Load(d); got != want {
					t.Errorf("Load(%s) = %d, want %d", d, got, want)
				}
			}
			var got []string
			for _, nn := range i.Concerned(tables, "d1") {
				got = append(got, nn.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.concerned) {
				t.Errorf("Concerned(d1) = %v, want %v", got, tt.concerned)
			}
		})
	}
}

// Assign hands choose the loads as they are, including the placements
// made by earlier decisions.
func TestAssignSeesLoads(t *testing.T) {
	i := New()
	i.Seed(key(tables, "a"), "d1")
	i.Assign(key(tables, "b"), func(load func(string) int) string {
		if load("d1") != 1 || load("d2") != 0 {
			t.Errorf("loads d1=%d d2=%d, want 1 and 0", load("d1"), load("d2"))
		}
		return "d2"
	})
	if i.Load("d2") != 1 {
		t.Errorf("Load(d2) = %d after Assign", i.Load("d2"))
	}
}

func TestPrimed(t *testing.T) {
	i := New()
	if i.Primed("dynamodb") {
		t.Error("a Promise never registered is primed")
	}
	synced := false
	i.SetPrimed("dynamodb", func() bool { return synced })
	if i.Primed("dynamodb") {
		t.Error("primed before its informer synced")
	}
	synced = true
	if !i.Primed("dynamodb") || i.Primed("queue") {
		t.Error("want dynamodb primed, queue not")
	}
}

func TestCommitted(t *testing.T) {
	i := New()
	var nudged []string
	i.OnCommit = func(d string) { nudged = append(nudged, d) }
	i.Committed("d1", "c1")
	i.Committed("d1", "c1") // the same commit again: no nudge
	i.Committed("d2", "c1")
	i.Committed("d1", "c2")
	if got := i.LastCommit("d1"); got != "c2" {
		t.Errorf("LastCommit(d1) = %q", got)
	}
	if got := i.LastCommit("d3"); got != "" {
		t.Errorf("LastCommit of an unknown destination = %q", got)
	}
	if want := []string{"d1", "d2", "d1"}; !slices.Equal(nudged, want) {
		t.Errorf("OnCommit called for %v, want %v", nudged, want)
	}
	select {
	case d := <-i.Changed():
		if d != "d1" {
			t.Errorf("first change for %q", d)
		}
	default:
		t.Error("no change delivered")
	}
}

// Wake never blocks: a subscriber that does not read loses events, not
// the caller.
func TestWakeNeverBlocks(t *testing.T) {
	i := New()
	ch := i.Subscribe()
	for range cap(ch) + 10 {
		i.Wake("d1")
	}
	if len(ch) != cap(ch) {
		t.Errorf("%d events queued, want %d", len(ch), cap(ch))
	}
	if e := <-ch; e.Object.GetName() != "d1" {
		t.Errorf("event for %q", e.Object.GetName())
	}
}

// Decide schedules with the loads placements made, and rebuilds its view
// of the destinations only from a list that holds every change counted.
func TestDecide(t *testing.T) {
	i := New()
	ready := func(names ...string) func() []scheduler.Destination {
		return func() []scheduler.Destination {
			var out []scheduler.Destination
			for _, n := range names {
				out = append(out, scheduler.Destination{Name: n, Ready: true, Schedulable: true, Capacity: -1})
			}
			return out
		}
	}
	listed := 0
	counted := func(f func() []scheduler.Destination) func() []scheduler.Destination {
		return func() []scheduler.Destination { listed++; return f() }
	}
	decide := func(name string, seen uint64, dests func() []scheduler.Destination) string {
		return i.Decide(key(tables, name), seen, counted(dests), func(x *scheduler.Index) scheduler.Decision {
			return x.Schedule(scheduler.Request{Key: name})
		}).Destination
	}
	i.Seed(key(tables, "old"), "d1")
	// d1 carries one request, so the least loaded is d2, then each in turn.
	if got := decide("a", 0, ready("d1", "d2")); got != "d2" {
		t.Fatalf("first decision on %q, want d2 (d1 has a seeded request)", got)
	}
	if got, other := decide("b", 0, ready("d1", "d2")), decide("c", 0, ready("d1", "d2")); got == other {
		t.Errorf("b and c both on %s with loads 1 and 1 then 2 and 1", got)
	}
	if listed != 1 {
		t.Errorf("listed the destinations %d times without a change, want 1", listed)
	}
	// A change counted after the list was taken: the stale list must not
	// become the view for good.
	seen := i.DestinationsSeen()
	i.DestinationsChanged()
	if got := decide("d", seen, ready("d1")); got == "" {
		t.Errorf("no destination from the stale list")
	}
	if got := decide("e", i.DestinationsSeen(), ready("d3")); got != "d3" {
		t.Errorf("decision on %q after d3 replaced the others, want d3", got)
	}
	if listed != 2 {
		t.Errorf("listed %d times, want 2 (the stale list is not taken)", listed)
	}
	if i.Load("d3") != 1 {
		t.Errorf("Load(d3) = %d after a decision there", i.Load("d3"))
	}
}
