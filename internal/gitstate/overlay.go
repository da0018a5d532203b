package gitstate

import (
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// overlay holds the objects of the commit being built in memory, over the
// on-disk clone. Writing thousands of loose objects costs a temporary file
// each; instead a pushed batch's objects reach the disk as one packfile
// (the same one that was pushed), and the overlay is emptied.
type overlay struct {
	storer.EncodedObjectStorer // the on-disk storage

	mu sync.RWMutex
	m  map[plumbing.Hash]plumbing.EncodedObject
}

func newOverlay(disk storer.EncodedObjectStorer) *overlay {
	return &overlay{EncodedObjectStorer: disk, m: map[plumbing.Hash]plumbing.EncodedObject{}}
}

func (o *overlay) NewEncodedObject() plumbing.EncodedObject { return &plumbing.MemoryObject{} }

func (o *overlay) SetEncodedObject(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := obj.Hash()
	o.m[h] = obj
	return h, nil
}

func (o *overlay) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o.mu.RLock()
	obj, ok := o.m[h]
	o.mu.RUnlock()
	if ok && (t == plumbing.AnyObject || obj.Type() == t) {
		return obj, nil
	}
	return o.EncodedObjectStorer.EncodedObject(t, h)
}

func (o *overlay) HasEncodedObject(h plumbing.Hash) error {
	o.mu.RLock()
	_, ok := o.m[h]
	o.mu.RUnlock()
	if ok {
		return nil
	}
	return o.EncodedObjectStorer.HasEncodedObject(h)
}

func (o *overlay) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	o.mu.RLock()
	obj, ok := o.m[h]
	o.mu.RUnlock()
	if ok {
		return obj.Size(), nil
	}
	return o.EncodedObjectStorer.EncodedObjectSize(h)
}

// clear forgets the in-memory objects once they are on disk.
func (o *overlay) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.m)
}
