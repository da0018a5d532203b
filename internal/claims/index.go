package claims

import (
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// ID identifies a request of any kind.
type ID struct {
	schema.GroupKind
	types.NamespacedName
}

// String is "<Kind> <namespace>/<name>".
func (id ID) String() string { return id.Kind + " " + id.NamespacedName.String() }

// Claim is one claim of a request, its key rendered.
type Claim struct {
	Name, Key string
	Scope     v1alpha1.ClaimScope
}

// String names the claim for messages.
func (c Claim) String() string { return fmt.Sprintf("%s %q (scope %s)", c.Name, c.Key, c.scope()) }

func (c Claim) scope() v1alpha1.ClaimScope {
	if c.Scope == "" {
		return v1alpha1.ClaimScopeGlobal
	}
	return c.Scope
}

// Holder is what the index knows of one request.
type Holder struct {
	ID      ID
	UID     types.UID
	Created time.Time
	// Destination the request is placed on; "" when it is not placed, so
	// its scope is unknown and it conflicts in every scope.
	Destination string
	// Written: its content is in the state store at Destination (its
	// status has a commit there), so what it claims may exist.
	Written bool
	Claims  []Claim
}

// Resolver returns the value of destination dest in scope: holders on
// destinations with equal values share the scope's keys. ok is false when
// the destination is unknown; the holder then conflicts in every scope.
type Resolver func(dest string, scope v1alpha1.ClaimScope) (value string, ok bool)

// Conflict names a claim a request cannot have, and who holds it.
type Conflict struct {
	Claim  Claim
	Holder ID
	// HolderDestination is where the holder is placed ("" when it is not
	// placed yet); HolderWritten says whether it is written there.
	HolderDestination string
	HolderWritten     bool
}

// Message says who holds the claim, for a condition or an event.
func (c *Conflict) Message() string {
	where := "an older request not placed yet, so counted in every scope"
	switch {
	case c.HolderDestination != "" && c.HolderWritten:
		where = "written on destination " + c.HolderDestination
	case c.HolderDestination != "":
		where = "placed on destination " + c.HolderDestination
	}
	return fmt.Sprintf("claim %s is held by %s (%s); nothing of this request is written until that one is deleted",
		c.Claim, c.Holder, where)
}

// Index is safe for concurrent use. The zero value is not usable; call New.
type Index struct {
	mu      sync.Mutex
	holders map[ID]*entry
	byKey   map[nameKey]map[ID]struct{}
	primed  map[string]func() bool

	subsMu sync.Mutex
	subs   map[schema.GroupKind][]chan event.GenericEvent
}

type nameKey struct{ name, key string }

type entry struct {
	Holder
	// granted is the destination where Decide last let the holder have
	// its claims; it holds them there from then on, written or not.
	granted string
	// waiting: the last Decide found a conflict; changes on its keys wake
	// it.
	waiting bool
}

// held says whether e holds its claims already: written with them, or
// granted them by this process.
func (e *entry) held() bool {
	return e.granted != "" || e.Written && e.Destination != ""
}

func (e *entry) claim(name, key string) Claim {
	for _, c := range e.Claims {
		if c.Name == name && c.Key == key {
			return c
		}
	}
	return Claim{}
}

// New returns an empty Index.
func New() *Index {
	return &Index{holders: map[ID]*entry{}, byKey: map[nameKey]map[ID]struct{}{},
		primed: map[string]func() bool{}, subs: map[schema.GroupKind][]chan event.GenericEvent{}}
}

// Subscribe returns a channel of events naming requests of kind gk that
// lost a claim and should decide again: their holder went, or changed in
// a way that may free the key. Each event's object carries only the
// request's namespace and name. Events are dropped when the channel is
// full, so a subscriber also rechecks on a timer.
func (i *Index) Subscribe(gk schema.GroupKind) <-chan event.GenericEvent {
	i.subsMu.Lock()
	defer i.subsMu.Unlock()
	ch := make(chan event.GenericEvent, 1024)
	i.subs[gk] = append(i.subs[gk], ch)
	return ch
}

// SetPrimed registers how to know that the requests of Promise promise
// are loaded into the index (an informer handler's HasSynced).
func (i *Index) SetPrimed(promise string, loaded func() bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.primed[promise] = loaded
}

// Primed says whether the requests of Promise promise are loaded.
func (i *Index) Primed(promise string) bool {
	i.mu.Lock()
	loaded := i.primed[promise]
	i.mu.Unlock()
	return loaded != nil && loaded()
}

// Observe records what the cache shows of a request. A holder without
// claims is dropped.
func (i *Index) Observe(h Holder) {
	i.mu.Lock()
	wake := i.waiters(i.set(h), h.ID)
	i.mu.Unlock()
	i.wake(wake)
}

// Release drops a request that is gone, and wakes those that waited for
// its claims.
func (i *Index) Release(id ID) {
	i.mu.Lock()
	var keys []nameKey
	if e := i.holders[id]; e != nil {
		keys = i.unindex(e)
		delete(i.holders, id)
	}
	wake := i.waiters(keys, id)
	i.mu.Unlock()
	i.wake(wake)
}

// Decide records h, whose Destination is where it is about to be written,
// and says whether it may hold its claims there: nil when it may (it then
// holds them until released or placed elsewhere), else the first conflict
// with a holder that ranks before it. Decisions are serialised, so of two
// requests deciding at once the second sees the first.
func (i *Index) Decide(h Holder, resolve Resolver) *Conflict {
	i.mu.Lock()
	wake := i.waiters(i.set(h), h.ID)
	e := i.holders[h.ID]
	var c *Conflict
	if e != nil {
		c = i.conflict(e, resolve)
		e.waiting = c != nil
		if c == nil && e.Destination != "" {
			e.granted = e.Destination
		}
	}
	i.mu.Unlock()
	i.wake(wake)
	return c
}

// conflict returns e's first conflict (claims in name order) with the
// best-ranked holder before it.
func (i *Index) conflict(e *entry, resolve Resolver) *Conflict {
	claims := append([]Claim(nil), e.Claims...)
	sort.Slice(claims, func(a, b int) bool { return claims[a].Name < claims[b].Name })
	for _, c := range claims {
		var best *entry
		for id := range i.byKey[nameKey{c.Name, c.Key}] {
			o := i.holders[id]
			if id == e.ID || !before(o, e) || !overlap(e, c, o, o.claim(c.Name, c.Key), resolve) {
				continue
			}
			if best == nil || before(o, best) {
				best = o
			}
		}
		if best != nil {
			return &Conflict{Claim: c, Holder: best.ID, HolderDestination: best.Destination, HolderWritten: best.Written}
		}
	}
	return nil
}

// before ranks holders: those holding already first, then the older.
func before(a, b *entry) bool {
	if ha, hb := a.held(), b.held(); ha != hb {
		return ha
	}
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.UID < b.UID
}

// overlap says whether claims ca of a and cb of b compete: always when
// either is not placed; else when their destinations have one value in
// the broader of the two scopes.
func overlap(a *entry, ca Claim, b *entry, cb Claim, resolve Resolver) bool {
	if a.Destination == "" || b.Destination == "" {
		return true
	}
	scope := ca.scope()
	if rank(cb.scope()) > rank(scope) {
		scope = cb.scope()
	}
	if scope == v1alpha1.ClaimScopeGlobal {
		return true
	}
	va, okA := resolve(a.Destination, scope)
	vb, okB := resolve(b.Destination, scope)
	return !okA || !okB || va == vb
}

func rank(s v1alpha1.ClaimScope) int {
	switch s {
	case v1alpha1.ClaimScopeDestination:
		return 0
	case v1alpha1.ClaimScopeAWS:
		return 1
	}
	return 2
}

// set records h and returns the keys whose holders changed (nil when
// nothing that matters to others did).
func (i *Index) set(h Holder) []nameKey {
	old := i.holders[h.ID]
	if len(h.Claims) == 0 {
		if old == nil {
			return nil
		}
		delete(i.holders, h.ID)
		return i.unindex(old)
	}
	h.Claims = append([]Claim(nil), h.Claims...)
	e := &entry{Holder: h}
	if old == nil {
		i.holders[h.ID] = e
		return i.index(e)
	}
	e.granted, e.waiting = old.granted, old.waiting
	// Placed elsewhere: what was granted was for the old place. An
	// unplaced view (a stale event) keeps the grant: conservative, as the
	// holder then also counts in every scope.
	if h.Destination != "" && h.Destination != old.granted {
		e.granted = ""
	}
	i.holders[h.ID] = e
	if sameHolder(old.Holder, h) && old.granted == e.granted {
		return nil
	}
	return append(i.unindex(old), i.index(e)...)
}

func sameHolder(a, b Holder) bool {
	if a.Destination != b.Destination || a.Written != b.Written || len(a.Claims) != len(b.Claims) {
		return false
	}
	for k := range a.Claims {
		if a.Claims[k] != b.Claims[k] {
			return false
		}
	}
	return true
}

func (i *Index) index(e *entry) []nameKey {
	keys := make([]nameKey, 0, len(e.Claims))
	for _, c := range e.Claims {
		k := nameKey{c.Name, c.Key}
		if i.byKey[k] == nil {
			i.byKey[k] = map[ID]struct{}{}
		}
		i.byKey[k][e.ID] = struct{}{}
		keys = append(keys, k)
	}
	return keys
}

func (i *Index) unindex(e *entry) []nameKey {
	keys := make([]nameKey, 0, len(e.Claims))
	for _, c := range e.Claims {
		k := nameKey{c.Name, c.Key}
		delete(i.byKey[k], e.ID)
		if len(i.byKey[k]) == 0 {
			delete(i.byKey, k)
		}
		keys = append(keys, k)
	}
	return keys
}

// waiters lists the waiting holders of keys, but not self.
func (i *Index) waiters(keys []nameKey, self ID) []ID {
	var out []ID
	seen := map[ID]bool{self: true}
	for _, k := range keys {
		for id := range i.byKey[k] {
			if !seen[id] && i.holders[id].waiting {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// wake tells the subscribers of each request's kind to look at it again.
// It never blocks.
func (i *Index) wake(ids []ID) {
	if len(ids) == 0 {
		return
	}
	i.subsMu.Lock()
	defer i.subsMu.Unlock()
	for _, id := range ids {
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name}}
		for _, ch := range i.subs[id.GroupKind] {
			select {
			case ch <- event.GenericEvent{Object: obj}:
			default:
			}
		}
	}
}
