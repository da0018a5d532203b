package gitstate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/switchyard-dev/switchyard/internal/metrics"
)

// maxPacks bounds the packs in the clone. Every push and every fetch that
// brings objects stores one pack, and a lookup of an object not in the
// cache searches each pack's index, so past this many some are merged.
const maxPacks = 10

// packWindow is how many objects the encoder compares for deltas (git's
// and go-git's default).
const packWindow = 10

// repack merges the smallest packs into one when the clone holds more
// than maxPacks, so their number stays bounded.
//
// It merges a geometric roll-up (the smallest packs, extended while the
// next is no more than twice their sum, git repack --geometric=2's rule),
// so an object is rewritten a logarithmic number of times and a repack
// costs what it merges, not the whole history. go-git's
// Repository.RepackObjects does delete the packs it replaces, but it walks
// every object reachable from every ref on each call: a repack every ten
// pushes then grows with the history (88 ms per push on average after
// 1,000 commits, 1.6 s for the slowest, measured by
// TestCloneAfterManyCommits).
//
// Pushes and lookups go on while it works (tidy runs it in the
// background): the merged pack is encoded taking mu shared for each
// object read only, and written to disk beside the others without
// touching the storage's in-memory pack index. Only deleting the merged
// packs and re-reading the indexes takes mu exclusively, since that index
// is not safe to change under readers. One repack runs at a time, and
// nothing else deletes packs, so the packs it merges stay while it reads
// them.
func (w *Writer) repack() (err error) {
	if repackFault != nil {
		if err := repackFault(); err != nil {
			return err
		}
	}
	pos, ok := w.repo.Storer.(storer.PackedObjectStorer)
	fs, isFS := w.repo.Storer.(*filesystem.Storage)
	if !ok || !isFS {
		return nil
	}
	w.mu.RLock()
	merge, objects, err := w.pickMerge(pos)
	w.mu.RUnlock()
	if err != nil || merge == nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := packfile.NewEncoder(&buf, lockedReads{EncodedObjectStorer: w.repo.Storer, mu: &w.mu}, false).Encode(objects, packWindow); err != nil {
		return fmt.Errorf("merging %d of the clone's packs: %w", len(merge), err)
	}
	pack := buf.Bytes()
	if err := writePack(fs, pack); err != nil {
		return fmt.Errorf("storing the merged pack: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// The storage keeps the indexes of deleted packs, and a lookup that
	// finds an object there fails to open the pack: read them again, even
	// after a failed delete, while no reader can race the reload.
	defer func() {
		fs.Reindex()
		if lerr := loadIndex(fs); err == nil {
			err = lerr
		}
	}()
	merged := plumbing.Hash(pack[len(pack)-20:]) // a pack ends with its checksum, its name
	for _, h := range merge {
		if h == merged {
			continue
		}
		if err := pos.DeleteOldObjectPackAndIndex(h, time.Time{}); err != nil {
			return fmt.Errorf("deleting a merged pack: %w", err)
		}
	}
	return nil
}

// tidy repacks in the background after a push or a fetch has moved the
// remote ref, so no push waits for a merge (the largest took 2.5 s in the
// steady bench, and every push meanwhile waited). A repack asked for while
// one runs is done when it ends. A failed repack (a full disk) is logged
// and counted, never returned: the push or fetch it follows has succeeded
// (the commit is on the remote, the ref is recorded), no object is lost
// (the merged pack is stored before any pack it replaces is deleted), and
// the next push or fetch tries again.
func (w *Writer) tidy() {
	w.tidyWanted.Store(true)
	if !w.tidying.TryLock() {
		return
	}
	w.tidied.Add(1)
	go func() {
		defer w.tidied.Done()
		for {
			for w.tidyWanted.Swap(false) {
				if err := w.repack(); err != nil {
					metrics.RepackFailures.WithLabelValues(w.cfg.Name).Inc()
					log.Log.WithName("gitstate").Error(err, "Repacking the clone failed; the push or fetch stands, the next one tries again",
						"store", w.cfg.Name, "dir", w.cfg.Dir)
				}
			}
			w.tidying.Unlock()
			// Asked for after the last look, by a caller that found this
			// one still running: go on, unless another has started.
			if !w.tidyWanted.Load() || !w.tidying.TryLock() {
				return
			}
		}
	}()
}

// lockedReads reads objects holding mu shared for each read, so that a
// long encode lets writers in between reads.
type lockedReads struct {
	storer.EncodedObjectStorer
	mu *sync.RWMutex
}

func (l lockedReads) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.EncodedObjectStorer.EncodedObject(t, h)
}

// DeltaObject lets the encoder reuse the deltas the packs hold.
func (l lockedReads) DeltaObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if d, ok := l.EncodedObjectStorer.(storer.DeltaObjectStorer); ok {
		return d.DeltaObject(t, h)
	}
	return l.EncodedObjectStorer.EncodedObject(t, h)
}

// writePack writes pack and its index into the clone's pack directory
// (through temporary files, renamed when complete) without telling the
// storage: it reads the pack once its indexes are loaded again.
func writePack(fs *filesystem.Storage, pack []byte) error {
	pw, err := dotgit.New(fs.Filesystem()).NewObjectPack()
	if err != nil {
		return err
	}
	if _, err := pw.Write(pack); err != nil {
		pw.Close()
		return err
	}
	return pw.Close()
}

// loadIndex makes the storage read its pack indexes now; callers hold mu
// exclusively, as readers would otherwise race to load them.
func loadIndex(s *filesystem.Storage) error {
	if err := s.HasEncodedObject(plumbing.ZeroHash); err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return fmt.Errorf("reading the clone's pack indexes: %w", err)
	}
	return nil
}

// pickMerge picks the packs to merge, if there are too many, and lists
// their objects. Callers hold mu.
func (w *Writer) pickMerge(pos storer.PackedObjectStorer) ([]plumbing.Hash, []plumbing.Hash, error) {
	packs, err := pos.ObjectPacks()
	if err != nil {
		return nil, nil, fmt.Errorf("listing the clone's packs: %w", err)
	}
	if len(packs) <= maxPacks {
		return nil, nil, nil
	}
	merge, err := w.rollUp(packs)
	if err != nil {
		return nil, nil, err
	}
	var objects []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, h := range merge {
		if objects, err = w.packObjects(h, objects, seen); err != nil {
			return nil, nil, err
		}
	}
	return merge, objects, nil
}

// rollUp picks the packs to merge (rollUpCount of them, smallest first).
func (w *Writer) rollUp(packs []plumbing.Hash) ([]plumbing.Hash, error) {
	size := make(map[plumbing.Hash]int64, len(packs))
	for _, h := range packs {
		fi, err := os.Stat(w.packPath(h, "pack"))
		if err != nil {
			return nil, fmt.Errorf("sizing the clone's packs: %w", err)
		}
		size[h] = fi.Size()
	}
	sorted := append([]plumbing.Hash(nil), packs...)
	sort.Slice(sorted, func(i, j int) bool { return size[sorted[i]] < size[sorted[j]] })
	sizes := make([]int64, len(sorted))
	for i, h := range sorted {
		sizes[i] = size[h]
	}
	return sorted[:rollUpCount(sizes)], nil
}

// rollUpCount returns how many of the packs, of sizes in ascending order,
// to merge: the smallest two, then each next while it is at most twice
// the size of those picked so far.
func rollUpCount(sizes []int64) int {
	if len(sizes) < 2 {
		return len(sizes)
	}
	k, sum := 2, sizes[0]+sizes[1]
	for k < len(sizes) && sizes[k] <= 2*sum {
		sum += sizes[k]
		k++
	}
	return k
}

func (w *Writer) packPath(h plumbing.Hash, ext string) string {
	return filepath.Join(w.cfg.Dir, "objects", "pack", fmt.Sprintf("pack-%s.%s", h, ext))
}

// packObjects appends the objects pack h holds, read from its idx file,
// to objects, skipping those already seen.
func (w *Writer) packObjects(h plumbing.Hash, objects []plumbing.Hash, seen map[plumbing.Hash]bool) ([]plumbing.Hash, error) {
	f, err := os.Open(w.packPath(h, "idx"))
	if err != nil {
		return nil, fmt.Errorf("reading a pack's index: %w", err)
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	it, err := idx.Entries()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
		}
		if !seen[e.Hash] {
			seen[e.Hash] = true
			objects = append(objects, e.Hash)
		}
	}
}

// removeTempFiles removes the temporary files of packs and objects that a
// process killed while writing them left in the clone; nothing else writes
// there while the clone opens, since one writer owns it.
func removeTempFiles(dir string) error {
	for _, pattern := range []string{"tmp_pack_*", "tmp_obj_*"} {
		left, err := filepath.Glob(filepath.Join(dir, "objects", "pack", pattern))
		if err != nil {
			return err
		}
		for _, f := range left {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("removing a half-written file of the clone: %w", err)
			}
		}
	}
	return nil
}

// repackFault, set by tests (export_test.go), makes every repack fail
// with its error before it starts.
var repackFault func() error
