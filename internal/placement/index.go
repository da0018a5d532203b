package placement

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/scheduler"
)

// Key identifies a request of any kind.
type Key struct {
	schema.GroupKind
	types.NamespacedName
}

// Index is safe for concurrent use.
type Index struct {
	// Started is when the index began filling: this process's start.
	Started time.Time

	mu         sync.Mutex
	byRequest  map[Key]string
	byDest     map[string]map[Key]struct{}
	waiting    map[schema.GroupKind]map[types.NamespacedName]struct{}
	lastCommit map[string]string
	changed    chan string
	// OnCommit, when set before use, is called with the destination of
	// each new commit recorded by Committed.
	OnCommit func(dest string)

	subsMu sync.Mutex
	subs   []chan event.GenericEvent

	// primed holds, per Promise, whether its requests' placements are
	// loaded (see SetPrimed).
	primed map[string]func() bool

	// view is the scheduler's index of the destinations as of generation
	// viewGen, its loads kept current by notify; destGen counts the
	// destination changes seen (DestinationsChanged). Decide rebuilds the
	// view only when destGen moved past viewGen.
	view    *scheduler.Index
	viewGen uint64
	destGen uint64
}

// Subscribe returns a channel of events naming destinations whose requests
// should be looked at again (see Wake). Call it before the manager starts.
func (i *Index) Subscribe() <-chan event.GenericEvent {
	i.subsMu.Lock()
	defer i.subsMu.Unlock()
	ch := make(chan event.GenericEvent, 1024)
	i.subs = append(i.subs, ch)
	return ch
}

// Wake tells the subscribers that something outside the API server changed
// for destination dest: Flux's state there, or its files in the state
// store. It never blocks; a full channel already holds events that wake
// the same objects.
func (i *Index) Wake(dest string) {
	d := &v1alpha1.Destination{}
	d.Name = dest
	i.subsMu.Lock()
	defer i.subsMu.Unlock()
	for _, ch := range i.subs {
		select {
		case ch <- event.GenericEvent{Object: d}:
		default:
		}
	}
}

// New returns an empty Index.
func New() *Index {
	return &Index{
		Started:    time.Now(),
		byRequest:  map[Key]string{},
		byDest:     map[string]map[Key]struct{}{},
		waiting:    map[schema.GroupKind]map[types.NamespacedName]struct{}{},
		lastCommit: map[string]string{},
		changed:    make(chan string, 4096),
		primed:     map[string]func() bool{},
	}
}

// Seed records that k is placed on dest, as its status in the cache says,
// unless the index already knows k: a reconcile's own decision is newer
// than what the cache shows. It rebuilds the loads after a start, before
// the placed requests are reconciled again.
func (i *Index) Seed(k Key, dest string) {
	if dest == "" {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.byRequest[k]; ok {
		return
	}
	if _, ok := i.waiting[k.GroupKind][k.NamespacedName]; ok {
		return
	}
	i.place(k, dest)
}

// SetPrimed registers how to know that the placements of Promise
// promise's requests are loaded into the index (an informer handler's
// HasSynced, the handler calling Seed).
func (i *Index) SetPrimed(promise string, loaded func() bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.primed[promise] = loaded
}

// Primed says whether the placements of Promise promise's requests are
// loaded. Until every Promise's are, loads may be counted too low.
func (i *Index) Primed(promise string) bool {
	i.mu.Lock()
	loaded := i.primed[promise]
	i.mu.Unlock()
	return loaded != nil && loaded()
}

// Changed delivers names of destinations whose load or last commit
// changed. Deliveries are dropped when nobody reads.
func (i *Index) Changed() <-chan string { return i.changed }

func (i *Index) notify(dest string) {
	metrics.Placements.WithLabelValues(dest).Set(float64(len(i.byDest[dest])))
	if i.view != nil {
		i.view.SetLoad(dest, len(i.byDest[dest]))
	}
	select {
	case i.changed <- dest:
	default:
	}
}

// Assign calls choose with the current loads and records its answer: k is
// placed on the returned destination, or waits when it is "". Decisions
// are serialised, so concurrent requests see each other's placements and
// least-loaded stays balanced under load.
func (i *Index) Assign(k Key, choose func(load func(dest string) int) string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	dest := choose(func(d string) int { return len(i.byDest[d]) })
	if dest == "" {
		i.wait(k)
	} else {
		i.place(k, dest)
	}
	return dest
}

// DestinationsChanged records that something the scheduler reads of the
// destinations changed; call it after the cache holds the change.
func (i *Index) DestinationsChanged() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.destGen++
}

// DestinationsSeen is the number of destination changes recorded so far.
// Read it before listing the destinations passed to Decide, so the list
// holds at least every change counted.
func (i *Index) DestinationsSeen() uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.destGen
}

// Decide records decide's answer for k, as Assign does, giving it the
// scheduler's index of the destinations with the current loads. The index
// is rebuilt from dests(), a list taken after DestinationsSeen returned
// seen, only when a destination changed since it was built and the list
// is newer than the index; otherwise dests is not called.
func (i *Index) Decide(k Key, seen uint64, dests func() []scheduler.Destination, decide func(*scheduler.Index) scheduler.Decision) scheduler.Decision {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.view == nil || (i.viewGen < i.destGen && seen > i.viewGen) {
		i.view, i.viewGen = scheduler.NewIndex(dests()), seen
		for dest, placed := range i.byDest {
			i.view.SetLoad(dest, len(placed))
		}
	}
	d := decide(i.view)
	if d.Destination == "" {
		i.wait(k)
	} else {
		i.place(k, d.Destination)
	}
	return d
}

func (i *Index) place(k Key, dest string) {
	i.unwait(k)
	old, ok := i.byRequest[k]
	if ok && old == dest {
		return
	}
	if ok {
		i.remove(k, old)
	}
	i.byRequest[k] = dest
	if i.byDest[dest] == nil {
		i.byDest[dest] = map[Key]struct{}{}
	}
	i.byDest[dest][k] = struct{}{}
	i.notify(dest)
}

func (i *Index) wait(k Key) {
	if old, ok := i.byRequest[k]; ok {
		i.remove(k, old)
		delete(i.byRequest, k)
	}
	if i.waiting[k.GroupKind] == nil {
		i.waiting[k.GroupKind] = map[types.NamespacedName]struct{}{}
	}
	i.waiting[k.GroupKind][k.NamespacedName] = struct{}{}
	i.countWaiting()
}

func (i *Index) countWaiting() {
	n := 0
	for _, w := range i.waiting {
		n += len(w)
	}
	metrics.Waiting.Set(float64(n))
}

// Forget drops k, for a deleted request.
func (i *Index) Forget(k Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.unwait(k)
	if old, ok := i.byRequest[k]; ok {
		i.remove(k, old)
		delete(i.byRequest, k)
	}
}

func (i *Index) unwait(k Key) {
	if w := i.waiting[k.GroupKind]; w != nil {
		if _, ok := w[k.NamespacedName]; ok {
			delete(w, k.NamespacedName)
			i.countWaiting()
		}
	}
}

func (i *Index) remove(k Key, dest string) {
	delete(i.byDest[dest], k)
	i.notify(dest)
}

// Concerned returns the requests of kind gk that a change to dest may
// affect: those placed on it and those waiting for any destination.
func (i *Index) Concerned(gk schema.GroupKind, dest string) []types.NamespacedName {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []types.NamespacedName
	for nn := range i.waiting[gk] {
		out = append(out, nn)
	}
	for k := range i.byDest[dest] {
		if k.GroupKind == gk {
			out = append(out, k.NamespacedName)
		}
	}
	return out
}

// Load is the number of requests placed on dest.
func (i *Index) Load(dest string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.byDest[dest])
}

// Committed records commit as the last one that changed dest's files.
// OnCommit, when set before use, is called with the destination of each
// new commit (the router nudges Flux there).
func (i *Index) Committed(dest, commit string) {
	i.mu.Lock()
	changed := i.lastCommit[dest] != commit
	if changed {
		i.lastCommit[dest] = commit
		i.notify(dest)
	}
	i.mu.Unlock()
	if changed && i.OnCommit != nil {
		i.OnCommit(dest)
	}
}

// LastCommit is the last commit recorded for dest, or "".
func (i *Index) LastCommit(dest string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lastCommit[dest]
}
