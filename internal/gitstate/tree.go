package gitstate

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"k8s.io/utils/lru"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// edit is a trie of pending Changes, applied to a base tree in one pass so
// each touched tree is rewritten once per commit, however many Changes
// touch it.
type edit struct {
	replace  bool
	files    map[string][]byte
	children map[string]*edit
}

func (e *edit) add(elems []string, c statestore.Change) {
	if len(elems) == 0 {
		if c.Replace {
			e.replace, e.files, e.children = true, map[string][]byte{}, nil
		}
		if e.files == nil {
			e.files = map[string][]byte{}
		}
		for name, content := range c.Files {
			e.files[name] = content
			delete(e.children, name)
		}
		return
	}
	if e.children == nil {
		e.children = map[string]*edit{}
	}
	child := e.children[elems[0]]
	if child == nil {
		child = &edit{}
		e.children[elems[0]] = child
	}
	child.add(elems[1:], c)
}

// trees reads tree objects through a cache of their decoded entries, so
// the lookups every commit and every Exists makes cost no disk reads. Trees
// the writer creates go into it as they are written. Trees are immutable,
// so it is never stale; it is bounded by the bytes its trees take, since
// one tree may hold a handful of entries or tens of thousands.
type trees struct {
	s storer.EncodedObjectStorer
	// mu guards bytes and keeps it in step with m.
	mu sync.Mutex
	// m is k8s.io/utils/lru, which bounds entries only: put evicts the
	// oldest trees until bytes fits max, and its eviction func counts
	// them out.
	m          *lru.Cache
	bytes, max int64
	// written collects the objects apply wrote, which a push must send.
	written []plumbing.Hash
}

// defaultTreeCacheBytes holds about 600,000 tree entries.
const defaultTreeCacheBytes = 64 << 20

func newTrees(s storer.EncodedObjectStorer, max int64) *trees {
	if max <= 0 {
		max = defaultTreeCacheBytes
	}
	t := &trees{s: s, max: max}
	// No entry cap of its own (the bytes bound it), but lru needs one.
	t.m = lru.NewWithEvictionFunc(math.MaxInt32, func(_ lru.Key, v any) {
		t.bytes -= treeBytes(v.(map[string]object.TreeEntry))
	})
	return t
}

// treeBytes estimates the memory a decoded tree takes in the cache: its
// map, each entry and its name, and the cache's own bookkeeping.
func treeBytes(entries map[string]object.TreeEntry) int64 {
	n := int64(200)
	for name := range entries {
		n += 100 + int64(len(name))
	}
	return n
}

// get returns the entries of tree h; the caller must not modify them.
func (t *trees) get(h plumbing.Hash) (map[string]object.TreeEntry, error) {
	t.mu.Lock()
	v, ok := t.m.Get(h)
	t.mu.Unlock()
	if ok {
		return v.(map[string]object.TreeEntry), nil
	}
	tree, err := object.GetTree(t.s, h)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	entries := make(map[string]object.TreeEntry, len(tree.Entries))
	for _, en := range tree.Entries {
		entries[en.Name] = en
	}
	t.put(h, entries)
	return entries, nil
}

func (t *trees) put(h plumbing.Hash, entries map[string]object.TreeEntry) {
	size := treeBytes(entries)
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m.Get(h); ok || size > t.max {
		return
	}
	t.m.Add(h, entries)
	t.bytes += size
	for t.bytes > t.max {
		t.m.RemoveOldest()
	}
}

// cached returns how many trees the cache holds and their estimated bytes.
func (t *trees) cached() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.Len(), t.bytes
}

// apply writes the trees of base with e applied and returns the new tree's
// hash, or the zero hash when the result is empty.
func (e *edit) apply(t *trees, base plumbing.Hash) (plumbing.Hash, error) {
	s := t.s
	entries := map[string]object.TreeEntry{}
	if !e.replace && !base.IsZero() {
		old, err := t.get(base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for name, en := range old {
			entries[name] = en
		}
	}
	for name, content := range e.files {
		h, err := writeBlob(s, content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		t.written = append(t.written, h)
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	}
	for name, child := range e.children {
		var childBase plumbing.Hash
		if en, ok := entries[name]; ok && en.Mode == filemode.Dir {
			childBase = en.Hash
		}
		h, err := child.apply(t, childBase)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			delete(entries, name)
		} else {
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	h, err := writeTree(s, entries)
	if err == nil {
		t.put(h, entries)
		t.written = append(t.written, h)
	}
	return h, err
}

func writeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return storeIfMissing(s, obj)
}

func writeTree(s storer.EncodedObjectStorer, entries map[string]object.TreeEntry) (plumbing.Hash, error) {
	t := &object.Tree{Entries: make([]object.TreeEntry, 0, len(entries))}
	for _, en := range entries {
		t.Entries = append(t.Entries, en)
	}
	// Git orders tree entries by name, comparing a directory as if its
	// name ended in "/".
	sort.Slice(t.Entries, func(i, j int) bool { return sortName(t.Entries[i]) < sortName(t.Entries[j]) })
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return storeIfMissing(s, obj)
}

func sortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// storeIfMissing stores obj unless it is already stored.
func storeIfMissing(s storer.EncodedObjectStorer, obj plumbing.EncodedObject) (plumbing.Hash, error) {
	if o, ok := s.(*overlay); ok {
		// Into memory without asking the disk: an object that is on disk
		// too is only packed and pushed once more, which is cheaper than
		// looking through the clone's packs for it.
		return o.SetEncodedObject(obj)
	}
	h := obj.Hash()
	if s.HasEncodedObject(h) == nil {
		return h, nil
	}
	return s.SetEncodedObject(obj)
}

// subtree returns the hash of the tree at dir under root, or the zero hash
// when there is no directory there.
func (t *trees) subtree(root plumbing.Hash, dir string) (plumbing.Hash, error) {
	h := root
	for _, name := range strings.Split(dir, "/") {
		if h.IsZero() {
			return h, nil
		}
		entries, err := t.get(h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		h = plumbing.ZeroHash
		if en, ok := entries[name]; ok && en.Mode == filemode.Dir {
			h = en.Hash
		}
	}
	return h, nil
}
