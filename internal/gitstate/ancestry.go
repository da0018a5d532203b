package gitstate

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Cache sizes: an entry is a few dozen bytes.
const (
	maxAncestry    = 100000
	maxGenerations = 100000
)

// Contains reports whether commit head includes commit c: it is c or a
// descendant of it. It answers "did Flux apply my commit?" when Flux
// reports head. Answers are cached, as many requests ask about the same
// pair.
//
// Its cost does not grow with the history: with generation numbers (a
// commit's longest distance from a root, plus one), a c not older than
// head is answered without a walk (the usual "not applied yet"), and a
// walk from head stops at commits older than c.
func (w *Writer) Contains(head, c string) (bool, error) {
	if head == c {
		return true, nil
	}
	key := [2]string{head, c}
	if v, ok := w.ancestry.Get(key); ok {
		return v.(bool), nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	hh, ch := plumbing.NewHash(head), plumbing.NewHash(c)
	hg, err := w.generation(hh)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", statestore.ErrUnknownCommit, head, err)
	}
	cg, err := w.generation(ch)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", statestore.ErrUnknownCommit, c, err)
	}
	ok := false
	if cg < hg {
		if ok, err = w.reaches(hh, ch, cg); err != nil {
			return false, err
		}
	}
	w.ancestry.Add(key, ok)
	return ok, nil
}

// reaches walks back from head through commits of generation at least gen
// (c's) and reports whether it meets c. Callers hold mu.
func (w *Writer) reaches(head, c plumbing.Hash, gen uint64) (bool, error) {
	seen := map[plumbing.Hash]bool{head: true}
	queue := []plumbing.Hash{head}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h == c {
			return true, nil
		}
		commit, err := object.GetCommit(w.objects, h)
		if err != nil {
			return false, err
		}
		for _, p := range commit.ParentHashes {
			if seen[p] {
				continue
			}
			seen[p] = true
			pg, err := w.generation(p)
			if err != nil {
				return false, err
			}
			if pg >= gen {
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// generation returns h's generation number, computing it (and its
// ancestors') from the nearest known ones. The walk keeps its own map, so
// it ends even when the history is longer than the cache. Callers hold mu.
func (w *Writer) generation(h plumbing.Hash) (uint64, error) {
	if g, ok := w.generations.Get(h); ok {
		return g.(uint64), nil
	}
	known := map[plumbing.Hash]uint64{}
	lookup := func(h plumbing.Hash) (uint64, bool) {
		if g, ok := known[h]; ok {
			return g, true
		}
		if g, ok := w.generations.Get(h); ok {
			return g.(uint64), true
		}
		return 0, false
	}
	parents := map[plumbing.Hash][]plumbing.Hash{}
	stack := []plumbing.Hash{h}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		if _, ok := lookup(top); ok {
			stack = stack[:len(stack)-1]
			continue
		}
		ps, ok := parents[top]
		if !ok {
			commit, err := object.GetCommit(w.objects, top)
			if err != nil {
				return 0, err
			}
			ps = commit.ParentHashes
			parents[top] = ps
		}
		var g uint64
		pending := false
		for _, p := range ps {
			pg, ok := lookup(p)
			if !ok {
				stack, pending = append(stack, p), true
				continue
			}
			g = max(g, pg)
		}
		if pending {
			continue
		}
		known[top] = g + 1
		stack = stack[:len(stack)-1]
	}
	for k, g := range known {
		w.generations.Add(k, g)
	}
	return known[h], nil
}
