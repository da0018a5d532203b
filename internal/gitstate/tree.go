package gitstate

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
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
// the writer creates go into it as they are written. It is cleared when it
// grows past maxCachedTrees; trees are immutable, so it is never stale.
type trees struct {
	s  storer.EncodedObjectStorer
	mu sync.Mutex
	m  map[plumbing.Hash]map[string]object.TreeEntry
	// written collects the objects apply wrote, which a push must send.
	written []plumbing.Hash
}

const maxCachedTrees = 1 << 20

func newTrees(s storer.EncodedObjectStorer) *trees {
	return &trees{s: s, m: map[plumbing.Hash]map[string]object.TreeEntry{}}
}

// get returns the entries of tree h; the caller must not modify them.
func (t *trees) get(h plumbing.Hash) (map[string]object.TreeEntry, error) {
	t.mu.Lock()
	entries, ok := t.m[h]
	t.mu.Unlock()
	if ok {
		return entries, nil
	}
	tree, err := object.GetTree(t.s, h)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	entries = make(map[string]object.TreeEntry, len(tree.Entries))
	for _, en := range tree.Entries {
		entries[en.Name] = en
	}
	t.put(h, entries)
	return entries, nil
}

func (t *trees) put(h plumbing.Hash, entries map[string]object.TreeEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxCachedTrees {
		t.m = map[plumbing.Hash]map[string]object.TreeEntry{}
	}
	t.m[h] = entries
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
