package gitstate

import (
	"path"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// maxHistory bounds the commits Dirs reads to find when directories changed.
const maxHistory = 10000

// Dirs lists the directories exactly depth levels below dir (relative to
// the root) at the last known head, with the commit that last changed
// each, following first parents. It is for inspection (`router state ls`),
// not for the write path.
func (w *Writer) Dirs(dir string, depth int) ([]statestore.Dir, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	head, out, err := w.dirs(dir, depth)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, w.lastChanges(head, out)
}

// List lists the directories exactly depth levels below dir at the last
// known head. It reads only the head's trees, so its cost does not grow
// with history (the orphan sweep runs it on every destination).
func (w *Writer) List(dir string, depth int) ([]string, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, dirs, err := w.dirs(dir, depth)
	if err != nil {
		return nil, err
	}
	return statestore.Paths(dirs), nil
}

// dirs walks the head's trees for Dirs and List; w.mu is held.
func (w *Writer) dirs(dir string, depth int) (plumbing.Hash, []statestore.Dir, error) {
	if err := statestore.CheckPath(dir); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	head, tree, err := w.remoteHead()
	if err != nil || head.IsZero() {
		return head, nil, err
	}
	var out []statestore.Dir
	var walk func(h plumbing.Hash, p string, level int) error
	walk = func(h plumbing.Hash, p string, level int) error {
		if level == depth {
			out = append(out, statestore.Dir{Path: p})
			return nil
		}
		entries, err := w.trees.get(h)
		if err != nil {
			return err
		}
		for name, e := range entries {
			if e.Mode == filemode.Dir {
				if err := walk(e.Hash, path.Join(p, name), level+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	start, err := w.trees.subtree(tree, w.full(dir))
	if err != nil || start.IsZero() {
		return head, nil, err
	}
	if err := walk(start, dir, 0); err != nil {
		return head, nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return head, out, nil
}

// lastChanges fills in when each dir last changed: walking back from head,
// the first commit whose parent has a different subtree there.
func (w *Writer) lastChanges(head plumbing.Hash, dirs []statestore.Dir) error {
	pending := map[int]plumbing.Hash{}
	c, err := object.GetCommit(w.objects, head)
	if err != nil {
		return err
	}
	for i := range dirs {
		if pending[i], err = w.trees.subtree(c.TreeHash, w.full(dirs[i].Path)); err != nil {
			return err
		}
	}
	for n := 0; len(pending) > 0 && n < maxHistory; n++ {
		var parent *object.Commit
		parentTree := plumbing.ZeroHash
		if c.NumParents() > 0 {
			if parent, err = c.Parent(0); err != nil {
				return err
			}
			parentTree = parent.TreeHash
		}
		for i, h := range pending {
			before := plumbing.ZeroHash
			if !parentTree.IsZero() {
				if before, err = w.trees.subtree(parentTree, w.full(dirs[i].Path)); err != nil {
					return err
				}
			}
			if before != h {
				dirs[i].Commit, dirs[i].When = c.Hash.String(), c.Committer.When
				delete(pending, i)
			}
		}
		if parent == nil {
			break
		}
		c = parent
	}
	return nil
}
