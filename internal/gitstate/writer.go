package gitstate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"k8s.io/utils/lru"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Config says which branch of which repository a Writer writes.
type Config struct {
	// URL of the remote repository (http, https or ssh).
	URL string
	// Branch to commit to; created on the first push when missing.
	Branch string
	// Root is the directory inside the repository that every Change is
	// relative to; "" is the repository root.
	Root string
	// Auth for fetch and push; nil for none.
	Auth transport.AuthMethod
	// AuthorName and AuthorEmail sign the commits.
	AuthorName, AuthorEmail string
	// Dir is the local directory holding the bare clone. It persists
	// across restarts.
	Dir string
	// MaxBatch caps the Changes in one commit (default 1000).
	MaxBatch int
	// Retries is how many times a rejected or failed push is retried
	// after a fetch (default 5), with backoff from 100ms doubling.
	Retries int
	// Name labels the writer's metrics (the store's name).
	Name string
	// TreeCacheBytes bounds the memory of decoded trees kept for lookups
	// (default 64 MiB).
	TreeCacheBytes int64
}

// Writer commits Changes to one branch of one repository. It is safe for
// concurrent use; a single goroutine does the Git work.
type Writer struct {
	cfg   Config
	repo  *git.Repository
	batch *statestore.Batcher

	// net serialises the network operations that move the writer's view
	// of the remote, fetches and pushes; lookups never take it.
	net sync.Mutex
	// mu guards the repository: writing objects and refs (building a
	// commit, storing what a fetch or push sent) takes it exclusively;
	// reading (packing, Exists, Contains) shares it. Nobody holds it across
	// the network, so lookups do not wait for a slow remote.
	mu sync.RWMutex
	// fetched is true once the remote branch was fetched at least once.
	fetched atomic.Bool
	// moved is set when a fetch finds the branch moved by someone else;
	// Refresh reports and clears it.
	moved   atomic.Bool
	trees   *trees
	objects *overlay
	// head caches the remote branch's head commit and tree (guarded by mu).
	head struct {
		known        bool
		commit, tree plumbing.Hash
	}
	// ancestry caches Contains answers and generations the generation
	// number of known commits (ancestry.go); commits never change, so
	// entries never go stale. Both are bounded LRU caches.
	ancestry, generations *lru.Cache
	// tidying is held by the background repack (tidy), tidyWanted asks
	// it for another look, and tidied lets Close wait for it.
	tidying    sync.Mutex
	tidyWanted atomic.Bool
	tidied     sync.WaitGroup
}

const remoteName = "origin"

// networkTimeout bounds one fetch or push, so a hung server cannot stall the
// writer forever.
const networkTimeout = 2 * time.Minute

// Open opens (or creates) the local clone in cfg.Dir and starts the writer.
// Call Close to stop it.
func Open(cfg Config) (*Writer, error) {
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	if cfg.Root != "" {
		if err := statestore.CheckPath(cfg.Root); err != nil {
			return nil, fmt.Errorf("state store root: %w", err)
		}
	}
	repo, err := openRepo(cfg)
	if err != nil {
		return nil, err
	}
	w := &Writer{cfg: cfg, repo: repo, objects: newOverlay(repo.Storer),
		ancestry: lru.New(maxAncestry), generations: lru.New(maxGenerations)}
	w.trees = newTrees(w.objects, cfg.TreeCacheBytes)
	w.batch = statestore.NewBatcher(cfg.Name, cfg.MaxBatch, cfg.Retries, statestore.Funcs{Write: w.commit, Unchanged: w.unchanged})
	return w, nil
}

func openRepo(cfg Config) (*git.Repository, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating clone directory: %w", err)
	}
	repo, err := git.PlainOpen(cfg.Dir)
	if err == nil {
		if err = intact(repo); err != nil {
			// The clone is only a cache of the remote: a process killed
			// while writing a ref leaves it unreadable (an empty ref
			// file), so start again from an empty clone and fetch.
			if rmErr := os.RemoveAll(cfg.Dir); rmErr != nil {
				return nil, fmt.Errorf("removing the damaged clone in %s (%v): %w", cfg.Dir, err, rmErr)
			}
			err = git.ErrRepositoryNotExists
		}
	}
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(cfg.Dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("opening clone in %s: %w", cfg.Dir, err)
	}
	if err := removeTempFiles(cfg.Dir); err != nil {
		return nil, err
	}
	if fs, ok := repo.Storer.(*filesystem.Storage); ok {
		// Before any reader: they would race to load the indexes.
		if err := loadIndex(fs); err != nil {
			return nil, err
		}
	}
	_ = repo.DeleteRemote(remoteName)
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{cfg.URL}}); err != nil {
		return nil, fmt.Errorf("configuring remote: %w", err)
	}
	return repo, nil
}

// intact checks that every ref of the clone reads and names a commit the
// clone has.
func intact(repo *git.Repository) error {
	refs, err := repo.References()
	if err != nil {
		return err
	}
	return refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference {
			return nil
		}
		_, err := object.GetCommit(repo.Storer, r.Hash())
		return err
	})
}

// Close stops the writer and waits for a repack under way. Queued Writes
// fail.
func (w *Writer) Close() {
	w.batch.Close()
	w.tidied.Wait()
}

// Write commits and pushes changes (with others queued at the same time)
// and returns the commit carrying them. note says in the commit message
// what the changes are for.
func (w *Writer) Write(ctx context.Context, note string, changes ...statestore.Change) (statestore.Result, error) {
	return w.batch.Write(ctx, note, changes)
}

// commit makes one commit of the batch and pushes it. A retry (the push was
// rejected or failed) first fetches, so the batch is replayed onto the new
// remote head.
func (w *Writer) commit(ctx context.Context, batch []statestore.Write, attempt int) ([]statestore.Result, error) {
	if attempt > 0 || !w.fetched.Load() {
		fctx, cancel := context.WithTimeout(ctx, networkTimeout)
		_, err := w.Fetch(fctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	return w.tryCommit(ctx, batch)
}

// tryCommit builds the commit on the current remote head and pushes it.
func (w *Writer) tryCommit(ctx context.Context, batch []statestore.Write) ([]statestore.Result, error) {
	results, base, commit, tree, err := w.build(batch)
	if err != nil || commit.IsZero() {
		return results, err
	}
	if err := w.push(ctx, base, commit, tree); err != nil {
		return nil, err
	}
	metrics.Commits.WithLabelValues(w.cfg.Name).Inc()
	return results, nil
}

// build stores the batch's objects and commit on top of the remote head.
// It returns a zero commit when nothing changed.
func (w *Writer) build(batch []statestore.Write) (results []statestore.Result, base, commit, tree plumbing.Hash, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var baseTree plumbing.Hash
	base, baseTree, err = w.remoteHead()
	if err != nil {
		return nil, base, plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	root := &edit{}
	for _, o := range batch {
		for _, c := range o.Changes {
			root.add(strings.Split(w.full(c.Dir), "/"), c)
		}
	}
	w.trees.written = w.trees.written[:0]
	w.objects.clear() // objects of a failed attempt are rebuilt as needed
	tree, err = root.apply(w.trees, baseTree)
	if err != nil {
		return nil, base, plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	results = make([]statestore.Result, len(batch))
	if tree == baseTree {
		for i := range results {
			results[i] = statestore.Result{Commit: base.String()}
		}
		return results, base, plumbing.ZeroHash, plumbing.ZeroHash, nil
	}
	changed := make([]bool, len(batch))
	var lines []string
	for i, o := range batch {
		for _, c := range o.Changes {
			before, err := w.trees.subtree(baseTree, w.full(c.Dir))
			if err != nil {
				return nil, base, plumbing.ZeroHash, plumbing.ZeroHash, err
			}
			after, err := w.trees.subtree(tree, w.full(c.Dir))
			if err != nil {
				return nil, base, plumbing.ZeroHash, plumbing.ZeroHash, err
			}
			if before != after {
				changed[i] = true
			}
		}
		if changed[i] {
			lines = append(lines, o.Note)
		}
	}
	commit, err = w.storeCommit(base, tree, lines)
	if err != nil {
		return nil, base, plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	for i := range results {
		results[i] = statestore.Result{Commit: commit.String(), Changed: changed[i]}
	}
	return results, base, commit, tree, nil
}

func (w *Writer) full(dir string) string {
	if w.cfg.Root == "" {
		return dir
	}
	return path.Join(w.cfg.Root, dir)
}

// maxMessageLines keeps commit messages readable for large batches.
const maxMessageLines = 50

func commitMessage(lines []string) string {
	sort.Strings(lines)
	subject := fmt.Sprintf("switchyard: %d change(s)", len(lines))
	if len(lines) == 1 {
		subject = "switchyard: " + lines[0]
	}
	if len(lines) > maxMessageLines {
		lines = append(lines[:maxMessageLines:maxMessageLines], fmt.Sprintf("... and %d more", len(lines)-maxMessageLines))
	}
	return subject + "\n\n" + strings.Join(lines, "\n") + "\n"
}

func (w *Writer) storeCommit(parent, tree plumbing.Hash, lines []string) (plumbing.Hash, error) {
	sig := object.Signature{Name: w.cfg.AuthorName, Email: w.cfg.AuthorEmail, When: time.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: commitMessage(lines), TreeHash: tree}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	obj := w.objects.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	w.trees.written = append(w.trees.written, obj.Hash())
	return w.objects.SetEncodedObject(obj)
}

func (w *Writer) localRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(w.cfg.Branch)
}
func (w *Writer) remoteRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, w.cfg.Branch)
}

// remoteHead is the last fetched or pushed head of the remote branch and its
// tree; zero hashes when the branch does not exist yet. Callers hold mu.
func (w *Writer) remoteHead() (commit, tree plumbing.Hash, err error) {
	if w.head.known {
		return w.head.commit, w.head.tree, nil
	}
	ref, err := w.repo.Reference(w.remoteRef(), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	c, err := object.GetCommit(w.repo.Storer, ref.Hash())
	if err != nil {
		return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("reading head commit: %w", err)
	}
	return c.Hash, c.TreeHash, nil
}

// setRemoteHead records commit (with tree) as the remote head. Callers hold
// mu exclusively.
func (w *Writer) setRemoteHead(commit, tree plumbing.Hash) error {
	w.head.known, w.head.commit, w.head.tree = true, commit, tree
	return w.repo.Storer.SetReference(plumbing.NewHashReference(w.remoteRef(), commit))
}

// push sends commit, built on base, as the new head of the branch
// (fast-forward only), then keeps the pushed pack on disk and records the
// commit as the remote head. It holds net throughout: a fetch that saw the
// commit on the remote before it is recorded would take the writer's own
// push for someone else's move of the branch.
func (w *Writer) push(ctx context.Context, base, commit, tree plumbing.Hash) error {
	ctx, cancel := context.WithTimeout(ctx, networkTimeout)
	defer cancel()
	w.net.Lock()
	defer w.net.Unlock()
	w.mu.RLock()
	pack, err := w.pack(w.trees.written)
	w.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := w.sendPack(ctx, base, commit, pack); err != nil {
		return fmt.Errorf("pushing to %s: %w", w.cfg.Branch, err)
	}
	if err := w.recordPush(pack, commit, tree); err != nil {
		return err
	}
	// After the refs moved: the packs merged are then all recorded ones.
	w.tidy()
	return nil
}

// recordPush keeps the pushed pack on disk and records commit as the
// remote head.
func (w *Writer) recordPush(pack []byte, commit, tree plumbing.Hash) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.savePack(pack); err != nil {
		return err
	}
	if err := w.repo.Storer.SetReference(plumbing.NewHashReference(w.localRef(), commit)); err != nil {
		return err
	}
	return w.setRemoteHead(commit, tree)
}

// unchanged reports whether changes would leave the last known head as it
// is, and that head. It hashes the content in memory and reads cached
// trees, so a write that changes nothing (every reconcile after a restart)
// costs no queueing, disk or network.
func (w *Writer) unchanged(changes []statestore.Change) (string, bool) {
	if !w.fetched.Load() {
		return "", false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	head, tree, err := w.remoteHead()
	if err != nil || head.IsZero() {
		return "", false
	}
	for _, c := range changes {
		dir, err := w.trees.subtree(tree, w.full(c.Dir))
		if err != nil {
			return "", false
		}
		if dir.IsZero() {
			if c.Replace && len(c.Files) == 0 {
				continue
			}
			return "", false
		}
		entries, err := w.trees.get(dir)
		if err != nil || (c.Replace && len(entries) != len(c.Files)) {
			return "", false
		}
		for name, content := range c.Files {
			en, ok := entries[name]
			if !ok || en.Mode != filemode.Regular || en.Hash != plumbing.ComputeHash(plumbing.BlobObject, content) {
				return "", false
			}
		}
	}
	return head.String(), true
}

// Exists reports whether dir (relative to the root) holds anything at the
// last known head of the branch.
func (w *Writer) Exists(dir string) (bool, error) {
	if err := statestore.CheckPath(dir); err != nil {
		return false, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, tree, err := w.remoteHead()
	if err != nil {
		return false, err
	}
	h, err := w.trees.subtree(tree, w.full(dir))
	return !h.IsZero(), err
}
