package gitstate_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// packs counts the pack files of the clone in dir.
func packs(t testing.TB, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// Every push (and every fetch that brings something) adds a pack to the
// clone; without repacking their number, and the cost of every object
// lookup that searches them, grows forever.
func TestPackCountStaysBounded(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w, cfg := openClone(t, url)
	dir := cfg.Dir
	defer w.Close()
	const pushes = 3 * gitstate.MaxPacks
	for i := 0; i < pushes; i++ {
		write(t, w, file(fmt.Sprintf("d/resources/ns/p/r%d", i%7), "x.yaml", fmt.Sprint(i)))
		// Someone else's commits reach the clone as fetched packs.
		if i%10 == 0 {
			testenv.PushOtherCommit(t, url, fmt.Sprintf("other-%d.txt", i), "x")
			if _, err := w.Fetch(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		gitstate.WaitTidy(w)
		if n := packs(t, dir); n > gitstate.MaxPacks {
			t.Fatalf("%d packs in the clone after %d pushes, want at most %d", n, i+1, gitstate.MaxPacks)
		}
	}
	w.Close()
	// A writer opened on the repacked clone reads every directory.
	checkReopened(t, cfg, 7).Close()
}

// TestCloneAfterManyCommits measures the clone after many single-commit
// pushes: its packs, its size on disk and the time a fresh start (a router
// restart) takes to open it and be ready for lookups. It takes minutes, so
// it runs only with SWITCHYARD_MEASURE_COMMITS set (docs/performance.md
// has the figures for 10000).
func TestCloneAfterManyCommits(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SWITCHYARD_MEASURE_COMMITS"))
	if n <= 0 || testing.Short() {
		t.Skip("set SWITCHYARD_MEASURE_COMMITS=10000 to measure")
	}
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w, cfg := openClone(t, url)
	dir := cfg.Dir
	// Lookups run alongside, as reconciles do: the slowest shows what a
	// repack costs them.
	stop := make(chan struct{})
	lookups := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		defer func() { lookups <- worst }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			began := time.Now()
			if _, err := w.Exists("d0/resources/ns-0/p/r-0"); err != nil {
				t.Error(err)
				return
			}
			worst = max(worst, time.Since(began))
		}
	}()
	start, slowest := time.Now(), time.Duration(0)
	for i := 0; i < n; i++ {
		// Requests spread over 10 destinations and 100 namespaces, as
		// the benchmarks lay them out.
		dir := fmt.Sprintf("d%d/resources/ns-%d/p/r-%d", i%10, i/100%100, i%5000)
		began := time.Now()
		write(t, w, file(dir, "table.yaml", fmt.Sprintf("n: %d\n", i)))
		slowest = max(slowest, time.Since(began))
	}
	took := time.Since(start)
	close(stop)
	worstLookup := <-lookups
	w.Close()
	size := diskUsage(t, dir)
	began := time.Now()
	w2, err := gitstate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := w2.Exists("d0/resources/ns-0/p/r-0"); !ok || err != nil {
		t.Fatalf("Exists after the fresh start: %v %v", ok, err)
	}
	fresh := time.Since(began)
	if p := packs(t, dir); p > gitstate.MaxPacks {
		t.Errorf("%d packs after %d commits, want at most %d", p, n, gitstate.MaxPacks)
	}
	t.Logf("%d commits in %v (%v per push, slowest %v, slowest concurrent lookup %v); clone: %d packs, %.1f MiB on disk; fresh start (open, fetch, first lookup) %v",
		n, took.Round(time.Millisecond), (took / time.Duration(n)).Round(time.Microsecond), slowest.Round(time.Millisecond),
		worstLookup.Round(time.Millisecond), packs(t, dir), float64(size)/(1<<20), fresh.Round(time.Millisecond))
}

// diskUsage sums the sizes of the files under dir.
func diskUsage(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			total += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// The tree cache is bounded by the memory its trees take, not by their
// number: a few wide trees (a namespace with thousands of requests) cost
// as much as many narrow ones.
func TestTreeCacheIsBoundedInBytes(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	const budget = 256 << 10
	w, err := gitstate.Open(gitstate.Config{URL: url, Dir: t.TempDir(), MaxBatch: 10000, TreeCacheBytes: budget,
		Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// 20 namespaces of 200 requests: about 4,000 cached trees, ~1 MB.
	var changes []statestore.Change
	for i := 0; i < 4000; i++ {
		changes = append(changes, file(fmt.Sprintf("d/resources/ns-%d/p/request-with-a-long-name-%d", i%20, i), "table.yaml", fmt.Sprint(i)))
	}
	write(t, w, changes...)
	n, size := gitstate.CachedTrees(w)
	if size > budget {
		t.Fatalf("the tree cache holds %d trees of about %d bytes, over its budget of %d", n, size, budget)
	}
	if n == 0 {
		t.Fatal("the tree cache is empty")
	}
	// Evicted trees are read again from the clone.
	for _, i := range []int{0, 1999, 3999} {
		if ok, err := w.Exists(fmt.Sprintf("d/resources/ns-%d/p/request-with-a-long-name-%d", i%20, i)); !ok || err != nil {
			t.Fatalf("request %d after eviction: %v %v", i, ok, err)
		}
	}
}

// A process killed while writing a pack (a push, a fetch or a repack)
// leaves its temporary file; the next Open removes it, or the clone
// grows by one per kill.
func TestOpenRemovesHalfWrittenPacks(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w, cfg := openClone(t, url)
	dir := cfg.Dir
	write(t, w, file("d/resources/ns/p/a", "x.yaml", "a"))
	w.Close()
	half := filepath.Join(dir, "objects", "pack", "tmp_pack_1234")
	if err := os.WriteFile(half, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	w2, err := gitstate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("the half-written pack is still there after Open: %v", err)
	}
	if _, err := w2.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := w2.Exists("d/resources/ns/p/a"); !ok || err != nil {
		t.Fatalf("Exists after Open: %v %v", ok, err)
	}
}

// counted returns the value of counter name with label store, as served.
func counted(t *testing.T, name, store string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" && l.GetValue() == store {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A repack runs after a push or a fetch has moved the remote ref. If it
// fails (a full disk), the push or fetch has still succeeded: the commit
// is on the remote, the clone is readable, the next repack tries again.
// Reporting the push failed would fail a batch that is committed (its
// retry finds nothing to change) and, with a failure that lasts, fail
// every push once.
func TestRepackFailureFailsNoPushOrFetch(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	gitstate.FailRepacks(t, errors.New("injected: no space left on device"))
	w, err := gitstate.Open(gitstate.Config{URL: url, Dir: t.TempDir(), Name: "repack-fails",
		Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword), Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const metric = "switchyard_repack_failures_total"
	before := counted(t, metric, "repack-fails")
	retries := counted(t, "switchyard_push_retries_total", "repack-fails")

	r, err := w.Write(ctx, "test", file("d/resources/ns/p/r", "x.yaml", "1"))
	if err != nil {
		t.Fatalf("the push failed: %v", err)
	}
	head := strings.Fields(testenv.Git(t, "", "ls-remote", testenv.AuthURL(url), "refs/heads/main"))
	if !r.Changed || len(head) == 0 || r.Commit != head[0] {
		t.Errorf("the push reports commit %q (changed %v); the remote's head is %v", r.Commit, r.Changed, head)
	}
	if n := commits(t, url); n != 1 {
		t.Errorf("%d commits on the remote, want 1", n)
	}
	if n := counted(t, "switchyard_push_retries_total", "repack-fails") - retries; n != 0 {
		t.Errorf("the batch was retried %v time(s)", n)
	}

	testenv.PushOtherCommit(t, url, "other.txt", "x")
	got, err := w.Fetch(ctx)
	if err != nil {
		t.Fatalf("the fetch failed: %v", err)
	}
	head = strings.Fields(testenv.Git(t, "", "ls-remote", testenv.AuthURL(url), "refs/heads/main"))
	if got != head[0] {
		t.Errorf("the fetch reports head %q, the remote's is %s", got, head[0])
	}
	gitstate.WaitTidy(w)
	if n := counted(t, metric, "repack-fails") - before; n != 2 {
		t.Errorf("%s{store=repack-fails} grew by %v, want 2 (the push's and the fetch's)", metric, n)
	}
}

// TestPushesDoNotWaitForARepack: a repack runs beside the pushes. It used
// to run inside the push that asked for it, and every push after waited:
// the largest merge in the steady bench took 2.5 s, and every request
// written meanwhile took that much longer.
func TestPushesDoNotWaitForARepack(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	release := gitstate.HoldRepacks(t)
	w, cfg := openClone(t, url)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := w.Write(ctx, "test", file(fmt.Sprintf("d/resources/ns/p/r%d", i), "x.yaml", "1"))
		cancel()
		if err != nil {
			t.Fatalf("push %d while a repack is held: %v", i+1, err)
		}
	}
	if n := commits(t, url); n != 3 {
		t.Errorf("%d commits on the remote, want 3", n)
	}
	release()
	w.Close()
	checkReopened(t, cfg, 3).Close()
}
