package scheduler

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/labels"
)

// Reasons a Decision carries. They match the request condition reasons in
// api/v1alpha1.
const (
	Placed                = "Placed"
	Misplaced             = "Misplaced"
	NoMatchingDestination = "NoMatchingDestination"
)

// Destination is what the scheduler knows of a destination.
type Destination struct {
	Name        string
	Labels      labels.Set
	Ready       bool
	Schedulable bool
	Deleting    bool
	Strict      bool
	// Capacity is the most requests it takes; negative means unlimited.
	Capacity int
	// Load is the number of requests placed on it.
	Load int
	// Namespaces selects the namespaces whose requests it takes, by their
	// labels; nil takes all.
	Namespaces labels.Selector
}

// admits reports whether d takes requests from req's namespace.
func (d *Destination) admits(req Request) bool {
	return d.Namespaces == nil || d.Namespaces.Matches(req.NamespaceLabels)
}

// Selector is the AND of label selectors a request must satisfy.
type Selector struct {
	Selectors []labels.Selector
	// Explicit is true when at least one selector names a label; strict
	// destinations take only explicit requests.
	Explicit bool
}

// Matches reports whether d's labels satisfy every selector, honouring
// StrictMatchLabels. It ignores readiness, cordon and capacity.
func (s Selector) Matches(d *Destination) bool {
	if d.Strict && !s.Explicit {
		return false
	}
	for _, sel := range s.Selectors {
		if !sel.Matches(d.Labels) {
			return false
		}
	}
	return true
}

// Request is a request to place.
type Request struct {
	// Key identifies the request stably (for the tie-break hash).
	Key      string
	Selector Selector
	// Current is the destination the request is placed on, or "".
	Current string
	// Namespace and NamespaceLabels are the request's namespace and its
	// labels, for destinations that restrict namespaces.
	Namespace       string
	NamespaceLabels labels.Set
}

// Decision is the outcome of Schedule.
type Decision struct {
	// Destination is where the request goes; "" when nowhere.
	Destination string
	// Reason is Placed, Misplaced or NoMatchingDestination.
	Reason string
	// Message says why, for a person.
	Message string
	// Moved is true when the request left Current because Current is gone.
	Moved bool
}

// Schedule decides where req goes among dests by looking at each of them.
// An Index gives the same answers without matching every destination.
func Schedule(req Request, dests []Destination) Decision {
	var moved bool
	if req.Current != "" {
		if d := find(dests, req.Current); d != nil && !d.Deleting {
			return stay(req, d)
		}
		moved = true
	}
	best, candidates := choose(req, dests)
	if best == nil {
		return Decision{Reason: NoMatchingDestination, Moved: moved, Message: noMatchMessage(req, dests)}
	}
	return placed(req, best, candidates, moved)
}

// stay is the decision for a request already on d, which is not being
// deleted: placement is sticky.
func stay(req Request, d *Destination) Decision {
	if !d.admits(req) {
		return Decision{Destination: d.Name, Reason: Misplaced,
			Message: fmt.Sprintf("destination %s no longer takes requests from namespace %s (its spec.namespaceSelector); the request stays until it is moved by hand", d.Name, req.Namespace)}
	}
	if req.Selector.Matches(d) {
		return Decision{Destination: d.Name, Reason: Placed,
			Message: fmt.Sprintf("placed on %s", d.Name)}
	}
	return Decision{Destination: d.Name, Reason: Misplaced,
		Message: fmt.Sprintf("destination %s no longer matches the request's selectors; the request stays until it is moved by hand", d.Name)}
}

// placed is the decision for best, chosen among candidates.
func placed(req Request, best *Destination, candidates int, moved bool) Decision {
	msg := fmt.Sprintf("least loaded of %d candidate(s): %s with %d request(s)", candidates, best.Name, best.Load)
	if moved {
		msg = fmt.Sprintf("rescheduled from %s (deleted): %s", req.Current, msg)
	}
	return Decision{Destination: best.Name, Reason: Placed, Message: msg, Moved: moved}
}

// Candidate reports whether d can take a new request with selector s.
func Candidate(s Selector, d *Destination) bool {
	return !d.Deleting && d.Ready && d.Schedulable &&
		(d.Capacity < 0 || d.Load < d.Capacity) && s.Matches(d)
}

func choose(req Request, dests []Destination) (*Destination, int) {
	var best *Destination
	var bestHash uint32
	n := 0
	key := fnvAdd(fnvOffset, req.Key)
	for i := range dests {
		d := &dests[i]
		if !Candidate(req.Selector, d) || !d.admits(req) {
			continue
		}
		n++
		switch {
		case best == nil || d.Load < best.Load:
			best, bestHash = d, tieBreak(key, d.Name)
		case d.Load == best.Load:
			// The hash is only needed, and only computed, on a tie.
			if h := tieBreak(key, d.Name); h < bestHash || (h == bestHash && d.Name < best.Name) {
				best, bestHash = d, h
			}
		}
	}
	return best, n
}

// FNV-1a, inline so that a decision allocates nothing.
const (
	fnvOffset uint32 = 2166136261
	fnvPrime  uint32 = 16777619
)

func fnvAdd(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= fnvPrime
	}
	return h
}

// tieBreak hashes the request key (already folded into key), a separator
// and the destination name.
func tieBreak(key uint32, dest string) uint32 {
	return fnvAdd(key*fnvPrime, dest) // key*prime is key ^ 0 (the separator) times prime
}

// noMatchMessage says why nothing matched, counting each cause once, so a
// user can tell "no labels match" from "all matches are full or cordoned".
func noMatchMessage(req Request, dests []Destination) string {
	var c noMatchCounts
	for i := range dests {
		if req.Selector.Matches(&dests[i]) {
			c.add(req, &dests[i])
		}
	}
	return c.message(req, len(dests))
}

// noMatchCounts counts the destinations whose labels match a request by
// the first reason each cannot take it.
type noMatchCounts struct {
	matching, notReady, cordoned, full, deleting, refused int
}

// add counts d, whose labels match req.
func (c *noMatchCounts) add(req Request, d *Destination) {
	c.matching++
	switch {
	case d.Deleting:
		c.deleting++
	case !d.Ready:
		c.notReady++
	case !d.Schedulable:
		c.cordoned++
	case d.Capacity >= 0 && d.Load >= d.Capacity:
		c.full++
	case !d.admits(req):
		c.refused++
	}
}

func (c *noMatchCounts) message(req Request, total int) string {
	if c.matching == 0 {
		return fmt.Sprintf("none of %d destination(s) match the selectors; waiting for one", total)
	}
	if c.refused == c.matching {
		return fmt.Sprintf("%d destination(s) match but none takes requests from namespace %s (spec.namespaceSelector); ask the platform team, or use another namespace", c.matching, req.Namespace)
	}
	return fmt.Sprintf("%d destination(s) match but none can take it (%d not ready, %d cordoned, %d full, %d deleting, %d refuse namespace %s); waiting",
		c.matching, c.notReady, c.cordoned, c.full, c.deleting, c.refused, req.Namespace)
}

// Targets returns the names of the destinations that receive dependencies
// for selector s: every match that is not being deleted, sorted. Cordoned,
// full and not-ready destinations still get them, since their existing
// requests depend on them.
func Targets(s Selector, dests []Destination) []string {
	var out []string
	for i := range dests {
		if !dests[i].Deleting && s.Matches(&dests[i]) {
			out = append(out, dests[i].Name)
		}
	}
	sort.Strings(out)
	return out
}

func find(dests []Destination, name string) *Destination {
	for i := range dests {
		if dests[i].Name == name {
			return &dests[i]
		}
	}
	return nil
}
