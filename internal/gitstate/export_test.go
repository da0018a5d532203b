package gitstate

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

type countingStorer struct {
	storer.EncodedObjectStorer
	reads atomic.Int64
}

func (c *countingStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	c.reads.Add(1)
	return c.EncodedObjectStorer.EncodedObject(t, h)
}

// CountReads makes w count the objects it reads from its clone and returns
// the count so far. Call it before w is used concurrently.
func CountReads(w *Writer) func() int64 {
	c := &countingStorer{EncodedObjectStorer: w.objects.EncodedObjectStorer}
	w.objects.EncodedObjectStorer = c
	return c.reads.Load
}

// MaxPacks is the most packs a clone holds between repacks.
const MaxPacks = maxPacks

// CachedTrees returns how many decoded trees w caches and their estimated
// size in bytes.
func CachedTrees(w *Writer) (n int, bytes int64) { return w.trees.cached() }

// FailRepacks makes every repack fail with err until t ends. Call it
// before any writer is opened.
func FailRepacks(t *testing.T, err error) {
	repackFault = func() error { return err }
	t.Cleanup(func() { repackFault = nil })
}

// HoldRepacks makes every repack wait, before it starts, until the
// returned function is called (or t ends). Call it before any writer is
// opened.
func HoldRepacks(t *testing.T) (release func()) {
	held := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	repackFault = func() error { <-held; return nil }
	t.Cleanup(func() { release(); repackFault = nil })
	return release
}

// WaitTidy waits until w's background repacks are done.
func WaitTidy(w *Writer) { w.tidied.Wait() }
