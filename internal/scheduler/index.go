package scheduler

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Index answers Schedule and Targets for one set of destinations without
// matching each destination's labels against the selectors: it keeps, per
// label key and per key=value pair, the set of destinations carrying it, so
// a selector becomes a few bitwise operations over those sets. Build it once
// per change of the destinations (labels, readiness, cordon, deletion) and
// update loads with SetLoad; its decisions are exactly those of Schedule and
// Targets on the same destinations, in the same order.
//
// An Index is not safe for concurrent use when SetLoad is called.
type Index struct {
	dests  []Destination
	byName map[string][]int // indices of each name; find takes the first
	words  int

	keys   map[string]bitset            // destinations having the key
	values map[string]map[string]bitset // destinations having key=value

	all        bitset // every destination
	strict     bitset // StrictMatchLabels
	live       bitset // not being deleted: dependency targets
	open       bitset // not deleting, Ready and schedulable
	full       bitset // at capacity; kept by SetLoad
	restricted bitset // has a namespace selector

	// What every tie costs, dense: slots[i] is dests[i]'s.
	slots []slot
}

// slot is what choosing reads of a destination. Destinations are kept in
// name order, so the tie-break hash of a name resumes from the state after
// the prefix it shares with the name hashed before it (FNV-1a is a left
// fold over the bytes).
type slot struct {
	load int
	lcp  int    // length of the prefix name shares with the name before
	name string // a substring of one string, so hashing walks contiguous memory
}

// NewIndex indexes dests. It keeps its own copy of the slice, so later
// changes to dests do not reach it.
func NewIndex(dests []Destination) *Index {
	// Name order, stable, so equal names keep the order find sees them in.
	sorted := append([]Destination(nil), dests...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	x := &Index{
		dests:  sorted,
		byName: make(map[string][]int, len(dests)),
		words:  (len(dests) + 63) / 64,
		keys:   map[string]bitset{},
		values: map[string]map[string]bitset{},
	}
	x.all, x.strict, x.live, x.open = x.newSet(), x.newSet(), x.newSet(), x.newSet()
	x.full, x.restricted = x.newSet(), x.newSet()
	x.slots = make([]slot, len(dests))
	var all strings.Builder
	for i := range sorted {
		all.WriteString(sorted[i].Name)
	}
	joined, off := all.String(), 0
	for i := range x.dests {
		d := &x.dests[i]
		x.slots[i].name, off = joined[off:off+len(d.Name)], off+len(d.Name)
		if i > 0 {
			x.slots[i].lcp = commonPrefix(x.slots[i-1].name, d.Name)
		}
		x.byName[d.Name] = append(x.byName[d.Name], i)
		x.all.set(i)
		x.setLoad(i, d.Load)
		if d.Strict {
			x.strict.set(i)
		}
		if d.Namespaces != nil {
			x.restricted.set(i)
		}
		if !d.Deleting {
			x.live.set(i)
			if d.Ready && d.Schedulable {
				x.open.set(i)
			}
		}
		x.indexLabels(i, d.Labels)
	}
	return x
}

func (x *Index) indexLabels(i int, ls labels.Set) {
	for k, v := range ls {
		if x.keys[k] == nil {
			x.keys[k] = x.newSet()
			x.values[k] = map[string]bitset{}
		}
		x.keys[k].set(i)
		if x.values[k][v] == nil {
			x.values[k][v] = x.newSet()
		}
		x.values[k][v].set(i)
	}
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Len is the number of destinations indexed.
func (x *Index) Len() int { return len(x.dests) }

// SetLoad records that destination name now has load requests placed on
// it. It reports false when no destination has that name.
func (x *Index) SetLoad(name string, load int) bool {
	for _, i := range x.byName[name] {
		x.setLoad(i, load)
	}
	return len(x.byName[name]) > 0
}

func (x *Index) setLoad(i, load int) {
	d := &x.dests[i]
	d.Load, x.slots[i].load = load, load
	if d.Capacity >= 0 && load >= d.Capacity {
		x.full.set(i)
	} else {
		x.full.clear(i)
	}
}

// Schedule decides where req goes, as Schedule(req, dests) does.
func (x *Index) Schedule(req Request) Decision {
	var moved bool
	if req.Current != "" {
		if same := x.byName[req.Current]; len(same) > 0 && !x.dests[same[0]].Deleting {
			return stay(req, &x.dests[same[0]])
		}
		moved = true
	}
	best, candidates := x.choose(req, x.match(req.Selector))
	if best == nil {
		// Rare, and worth a second look at the labels to say why.
		return Decision{Reason: NoMatchingDestination, Moved: moved, Message: x.noMatchMessage(req, x.match(req.Selector))}
	}
	return placed(req, best, candidates, moved)
}

// Targets returns what Targets(s, dests) returns.
func (x *Index) Targets(s Selector) []string {
	m := x.match(s)
	m.and(x.live)
	var out []string
	m.each(func(i int) { out = append(out, x.dests[i].Name) })
	sort.Strings(out)
	return out
}

// match returns the destinations whose labels satisfy s, honouring
// StrictMatchLabels: the set Selector.Matches accepts.
func (x *Index) match(s Selector) bitset {
	m := x.newSet()
	copy(m, x.all)
	if !s.Explicit {
		m.andNot(x.strict)
	}
	for _, sel := range s.Selectors {
		reqs, selectable := sel.Requirements()
		if !selectable {
			// Not made of requirements (labels.Nothing, or another
			// implementation): ask it about each remaining destination.
			m.each(func(i int) {
				if !sel.Matches(x.dests[i].Labels) {
					m.clear(i)
				}
			})
			continue
		}
		for j := range reqs {
			x.require(m, &reqs[j])
		}
	}
	return m
}

// require narrows m to the destinations satisfying r, with the semantics
// of labels.Requirement.Matches.
func (x *Index) require(m bitset, r *labels.Requirement) {
	switch r.Operator() {
	case selection.In, selection.Equals, selection.DoubleEquals:
		m.and(x.anyValue(r))
	case selection.NotIn, selection.NotEquals:
		// A destination without the key satisfies NotIn.
		m.andNot(x.anyValue(r))
	case selection.Exists:
		m.and(x.keySet(r.Key()))
	case selection.DoesNotExist:
		m.andNot(x.keySet(r.Key()))
	default:
		// Gt, Lt: numeric comparisons the index does not hold.
		m.each(func(i int) {
			if !r.Matches(x.dests[i].Labels) {
				m.clear(i)
			}
		})
	}
}

// keySet is the set of destinations having key; an empty set if none.
func (x *Index) keySet(key string) bitset {
	if s := x.keys[key]; s != nil {
		return s
	}
	return x.newSet()
}

// anyValue is the set of destinations whose value for r's key is one of
// r's values.
func (x *Index) anyValue(r *labels.Requirement) bitset {
	byValue := x.values[r.Key()]
	vals := r.ValuesUnsorted()
	if len(vals) == 1 {
		if s := byValue[vals[0]]; s != nil {
			return s
		}
		return x.newSet()
	}
	out := x.newSet()
	for _, v := range vals {
		if s := byValue[v]; s != nil {
			out.or(s)
		}
	}
	return out
}

// choose picks what the package's choose picks among the destinations in
// cand (which it changes): the least loaded, then the smallest tie-break
// hash, then the smallest name, then the first in the caller's order.
// Walking in name order (stable), the first seen wins the last two.
func (x *Index) choose(req Request, cand bitset) (*Destination, int) {
	for w := range cand {
		cand[w] &= x.open[w] &^ x.full[w]
		for r := cand[w] & x.restricted[w]; r != 0; r &= r - 1 {
			if i := w*64 + bits.TrailingZeros64(r); !x.dests[i].admits(req) {
				cand.clear(i)
			}
		}
	}
	// state[k] is the hash state after k bytes of the name hashed last;
	// state[0] is after the request key and the separator, as in tieBreak.
	var state [maxName + 1]uint32
	key := fnvAdd(fnvOffset, req.Key)
	state[0] = key * fnvPrime
	n, best, bestLoad, bestHash := 0, -1, 0, uint32(0)
	last := -1 // the destination hashed last
	for w := range cand {
		n += bits.OnesCount64(cand[w])
		for c := cand[w]; c != 0; c &= c - 1 {
			i := w*64 + bits.TrailingZeros64(c)
			sl := &x.slots[i]
			if best >= 0 && sl.load > bestLoad {
				continue
			}
			// The hash is only needed, and only computed, for a least load.
			var hash uint32
			if len(sl.name) > maxName {
				hash, last = tieBreak(key, sl.name), -1
			} else {
				shared := 0
				if last >= 0 {
					shared = sl.lcp
					for j := last + 1; j < i; j++ {
						shared = min(shared, x.slots[j].lcp)
					}
				}
				hash = state[shared]
				for k := shared; k < len(sl.name); k++ {
					hash ^= uint32(sl.name[k])
					hash *= fnvPrime
					state[k+1] = hash
				}
				last = i
			}
			if best < 0 || sl.load < bestLoad || hash < bestHash {
				best, bestLoad, bestHash = i, sl.load, hash
			}
		}
	}
	if best < 0 {
		return nil, 0
	}
	return &x.dests[best], n
}

// maxName is the longest Kubernetes object name; choose hashes longer
// names from scratch.
const maxName = 253

// noMatchMessage is the package's noMatchMessage over matching.
func (x *Index) noMatchMessage(req Request, matching bitset) string {
	var c noMatchCounts
	matching.each(func(i int) { c.add(req, &x.dests[i]) })
	return c.message(req, len(x.dests))
}

func (x *Index) newSet() bitset { return make(bitset, x.words) }

// bitset holds one bit per destination, by index.
type bitset []uint64

func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }
func (b bitset) clear(i int) { b[i/64] &^= 1 << (i % 64) }

func (b bitset) and(o bitset) {
	for w := range b {
		b[w] &= o[w]
	}
}

func (b bitset) andNot(o bitset) {
	for w := range b {
		b[w] &^= o[w]
	}
}

func (b bitset) or(o bitset) {
	for w := range b {
		b[w] |= o[w]
	}
}

// each calls f with every index in b, in increasing order. f may clear
// the bit it is given.
func (b bitset) each(f func(i int)) {
	for w := range b {
		word := b[w]
		for word != 0 {
			f(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
}

// String lists the indices in b, for test failures.
func (b bitset) String() string {
	var out []int
	b.each(func(i int) { out = append(out, i) })
	return fmt.Sprint(out)
}
