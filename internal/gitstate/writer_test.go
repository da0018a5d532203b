package gitstate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

func open(t *testing.T, url, root string) *gitstate.Writer {
	t.Helper()
	w, err := gitstate.Open(gitstate.Config{
		URL: url, Branch: "main", Root: root, Dir: t.TempDir(),
		Auth:       gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword),
		AuthorName: "switchyard", AuthorEmail: "switchyard@example.com",
		Retries: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// openClone opens a writer on url with a clone in a new directory, and
// returns its Config to open the clone again; the caller closes it, as the
// tests here close it midway to reopen or to act like a killed process.
func openClone(t *testing.T, url string) (*gitstate.Writer, gitstate.Config) {
	t.Helper()
	cfg := gitstate.Config{URL: url, Dir: t.TempDir(), Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword)}
	w, err := gitstate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w, cfg
}

func write(t *testing.T, w *gitstate.Writer, changes ...statestore.Change) statestore.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := w.Write(ctx, "test", changes...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func file(dir, name, content string) statestore.Change {
	return statestore.Change{Dir: dir, Files: map[string][]byte{name: []byte(content)}, Replace: true}
}

func commits(t *testing.T, url string) int {
	t.Helper()
	dir := testenv.Clone(t, url)
	n := 0
	fmt.Sscan(testenv.Git(t, dir, "rev-list", "--count", "HEAD"), &n)
	return n
}

func TestWriteCreatesBranchAndFiles(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "clusters")

	r := write(t, w, file("dev-1/resources/ns/p/a", "table.yaml", "a: 1\n"))
	if !r.Changed || len(r.Commit) != 40 {
		t.Fatalf("first write: %+v", r)
	}
	got := testenv.Files(t, url)
	if want := []string{"clusters/dev-1/resources/ns/p/a/table.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	dir := testenv.Clone(t, url)
	if head := testenv.Git(t, dir, "rev-parse", "HEAD"); head != r.Commit {
		t.Fatalf("head %s, writer said %s", head, r.Commit)
	}
	if msg := testenv.Git(t, dir, "log", "-1", "--format=%an <%ae>"); msg != "switchyard <switchyard@example.com>" {
		t.Fatalf("author %q", msg)
	}
}

func TestUnchangedContentMakesNoCommit(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	first := write(t, w, file("d/resources/ns/p/a", "x.yaml", "x\n"))
	again := write(t, w, file("d/resources/ns/p/a", "x.yaml", "x\n"))
	if again.Changed || again.Commit != first.Commit {
		t.Fatalf("no-op write: %+v after %+v", again, first)
	}
	if n := commits(t, url); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
}

func TestReplaceAndUpsertAndRemove(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	write(t, w,
		statestore.Change{Dir: "d/resources", Files: map[string][]byte{statestore.CanaryFile: []byte("c\n")}},
		statestore.Change{Dir: "d/resources/ns/p/a", Files: map[string][]byte{"1.yaml": []byte("1"), "2.yaml": []byte("2")}, Replace: true},
		statestore.Change{Dir: "d/resources/ns/p/b", Files: map[string][]byte{"1.yaml": []byte("1")}, Replace: true},
	)
	// Upsert keeps siblings; replace drops files not named.
	write(t, w,
		statestore.Change{Dir: "d/resources", Files: map[string][]byte{statestore.CanaryFile: []byte("c2\n")}},
		statestore.Change{Dir: "d/resources/ns/p/a", Files: map[string][]byte{"2.yaml": []byte("2")}, Replace: true},
		statestore.Change{Dir: "d/resources/ns/p/b", Replace: true},
	)
	got := testenv.Files(t, url)
	want := []string{"d/resources/ns/p/a/2.yaml", "d/resources/" + statestore.CanaryFile}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

func TestPathsCannotEscape(t *testing.T) {
	g := testenv.StartGitServer(t)
	w := open(t, g.NewRepo(t, "state"), "root")
	for _, dir := range []string{"../x", "a/../../x", "/abs", "a//b", "a/./b", "a/.git/b", "a\nb", "a\\b", ""} {
		if _, err := w.Write(context.Background(), "bad", statestore.Change{Dir: dir, Replace: true}); err == nil {
			t.Errorf("dir %q accepted", dir)
		}
	}
	for _, name := range []string{"../x.yaml", "a/b.yaml", "..", ""} {
		c := statestore.Change{Dir: "ok", Files: map[string][]byte{name: nil}}
		if _, err := w.Write(context.Background(), "bad", c); err == nil {
			t.Errorf("file name %q accepted", name)
		}
	}
	if _, err := statestore.RequestDir("dest", "ns", "promise", "../../etc"); err == nil {
		t.Error("RequestDir accepted a traversing name")
	}
}

func TestConcurrentWritesAreBatched(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := file(fmt.Sprintf("d/resources/ns/p/r%d", i), "x.yaml", fmt.Sprint(i))
			if _, err := w.Write(context.Background(), fmt.Sprintf("write r%d", i), c); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(testenv.Files(t, url)); got != n {
		t.Fatalf("%d files, want %d", got, n)
	}
	if c := commits(t, url); c >= n {
		t.Fatalf("%d commits for %d writes: not batched", c, n)
	}
}

func TestOtherWritersSurvive(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	write(t, w, file("d/resources/ns/p/a", "x.yaml", "a"))

	// Someone else pushes an unrelated file; the writer's view is stale.
	theirs := testenv.PushOtherCommit(t, url, "README.md", "hello\n")

	r := write(t, w, file("d/resources/ns/p/b", "x.yaml", "b"))
	testenv.CheckHistoryKeeps(t, url, theirs)
	if head := testenv.Git(t, testenv.Clone(t, url), "rev-parse", "HEAD"); head != r.Commit {
		t.Fatalf("main is at %s, the writer says %s", head, r.Commit)
	}
	files := testenv.Files(t, url)
	for _, f := range []string{"README.md", "d/resources/ns/p/a/x.yaml", "d/resources/ns/p/b/x.yaml"} {
		if !slices.Contains(files, f) {
			t.Fatalf("%s missing from %v", f, files)
		}
	}
}

func TestServerOutage(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	write(t, w, file("d/resources/ns/p/a", "x.yaml", "a"))

	g.Proxy.Stop()
	_, err := w.Write(context.Background(), "during outage", file("d/resources/ns/p/b", "x.yaml", "b"))
	if err == nil {
		t.Fatal("write succeeded while the server was down")
	}
	if strings.Contains(err.Error(), testenv.GitPassword) {
		t.Fatalf("error leaks the password: %v", err)
	}
	if err := g.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	write(t, w, file("d/resources/ns/p/b", "x.yaml", "b"))
	if got := len(testenv.Files(t, url)); got != 2 {
		t.Fatalf("%d files after recovery, want 2", got)
	}
	if out, err := testenv.GitE(g.RepoDir("state"), "fsck", "--full"); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}
}

// checkReopened checks the closed clone in cfg.Dir with git fsck, then
// opens it again and finds the directories d/resources/ns/p/r0 to r<n-1>
// that were written through it. The caller closes the writer it returns.
func checkReopened(t *testing.T, cfg gitstate.Config, n int) *gitstate.Writer {
	t.Helper()
	if out, err := testenv.GitE(cfg.Dir, "fsck", "--full"); err != nil {
		t.Fatalf("fsck of the clone: %v\n%s", err, out)
	}
	w, err := gitstate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Fetch(context.Background()); err != nil {
		w.Close()
		t.Fatal(err)
	}
	for i := range n {
		if ok, err := w.Exists(fmt.Sprintf("d/resources/ns/p/r%d", i)); !ok || err != nil {
			w.Close()
			t.Fatalf("r%d after reopening the clone: %v %v", i, ok, err)
		}
	}
	return w
}

// TestClonePersistsPushedPacks: pushed objects are kept on disk as packs,
// so a reopened clone is complete and finds what it wrote.
func TestClonePersistsPushedPacks(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w, cfg := openClone(t, url)
	dir := cfg.Dir
	for i := 0; i < 5; i++ {
		write(t, w, file(fmt.Sprintf("d/resources/ns/p/r%d", i), "x.yaml", fmt.Sprint(i)))
	}
	w.Close()
	w2 := checkReopened(t, cfg, 5)
	if ok, err := w2.Exists("d/resources/ns/p/missing"); ok || err != nil {
		t.Fatalf("Exists of a missing directory: %v %v", ok, err)
	}
	if got := len(testenv.Files(t, url)); got != 5 {
		t.Fatalf("%d files on the remote", got)
	}
	w2.Close()

	// A process killed while writing a ref leaves an empty ref file (found
	// by the SIGKILL fault test): the next Open rebuilds the clone.
	ref := filepath.Join(dir, "refs", "remotes", "origin", "main")
	if err := os.WriteFile(ref, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w3, err := gitstate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Close()
	write(t, w3, file("d/resources/ns/p/after", "x.yaml", "after"))
	if got := len(testenv.Files(t, url)); got != 6 {
		t.Fatalf("%d files on the remote after the damaged clone was rebuilt, want 6", got)
	}
}

// A commit's message says what it changed for which request (a lone
// write's note is the subject).
func TestCommitMessageSaysWhatChanged(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "clusters")
	write(t, w, file("dev-1/resources/ns/p/kept", "table.yaml", "k\n"))
	if _, err := w.Write(context.Background(), "remove ns/gone DynamoDBRequest (p) from dev-1",
		statestore.Change{Dir: "dev-1/resources/ns/p/gone", Replace: true}, file("dev-1/resources/ns/p/new", "table.yaml", "n\n")); err != nil {
		t.Fatal(err)
	}
	if msg := testenv.Git(t, testenv.Clone(t, url), "log", "-1", "--format=%s"); msg != "switchyard: remove ns/gone DynamoDBRequest (p) from dev-1" {
		t.Fatalf("subject %q", msg)
	}
}

// TestLookupsDoNotWaitForTheNetwork: while a fetch hangs on a server that
// accepted the connection but never answers, lookups (Exists, Contains,
// an unchanged Write) answer from what the writer already knows.
func TestLookupsDoNotWaitForTheNetwork(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	a := write(t, w, file("d/resources/ns/p/a", "x.yaml", "a"))
	b := write(t, w, file("d/resources/ns/p/b", "x.yaml", "b"))

	g.Proxy.Hold()
	t.Cleanup(g.Proxy.Release)
	fetched := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := w.Fetch(ctx)
		fetched <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the fetch to reach the server", func() (bool, string) {
		return g.Proxy.Held() > 0, fmt.Sprintf("%d held", g.Proxy.Held())
	})

	answers := func(what string, f func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s waited for the fetch", what)
		}
	}
	answers("Exists", func() error {
		if ok, err := w.Exists("d/resources/ns/p/a"); err != nil || !ok {
			return fmt.Errorf("got %v, %v; want true", ok, err)
		}
		return nil
	})
	answers("Contains", func() error {
		if ok, err := w.Contains(b.Commit, a.Commit); err != nil || !ok {
			return fmt.Errorf("got %v, %v; want true", ok, err)
		}
		return nil
	})
	answers("an unchanged Write", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := w.Write(ctx, "again", file("d/resources/ns/p/b", "x.yaml", "b"))
		if err == nil && (r.Changed || r.Commit != b.Commit) {
			err = fmt.Errorf("got %+v, want commit %s unchanged", r, b.Commit)
		}
		return err
	})

	g.Proxy.Release()
	if err := <-fetched; err != nil {
		t.Fatalf("fetch after the release: %v", err)
	}
}

// TestOwnPushIsNotDrift: Refreshes running while the writer pushes see the
// writer's own commits on the remote, sometimes before the writer recorded
// them; none of them is a move of the branch.
func TestOwnPushIsNotDrift(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	write(t, w, file("d/resources/ns/p/first", "x.yaml", "0"))
	if _, _, err := w.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var moves, refreshes int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, moved, err := w.Refresh(context.Background())
			if err != nil {
				t.Errorf("refresh: %v", err)
				return
			}
			refreshes++
			if moved {
				moves++
			}
		}
	}()
	for i := range 40 {
		write(t, w, file(fmt.Sprintf("d/resources/ns/p/r%d", i), "x.yaml", "x"))
	}
	close(stop)
	wg.Wait()
	if moves != 0 {
		t.Errorf("%d of %d refreshes during 40 pushes of the writer's own reported the branch moved", moves, refreshes)
	}
}

// TestContainsCostDoesNotGrowWithHistory: "is my commit applied?" asked
// while Flux still reports an older head (the usual case right after a
// write) reads no history once the writer knows the commits, however long
// the history is; a true answer reads only the commits in between.
func TestContainsCostDoesNotGrowWithHistory(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "")
	var heads []string
	for i := range 200 {
		heads = append(heads, write(t, w, file("d/resources/ns/p/r", "x.yaml", fmt.Sprint(i))).Commit)
	}
	reads := gitstate.CountReads(w)
	contains := func(head, c string, want bool) int64 {
		t.Helper()
		before := reads()
		got, err := w.Contains(head, c)
		if err != nil || got != want {
			t.Fatalf("Contains(%.7s, %.7s) = %v, %v; want %v", head, c, got, err, want)
		}
		return reads() - before
	}
	contains(heads[100], heads[199], false) // the writer learns its commits
	if n := contains(heads[150], heads[198], false); n > 2 {
		t.Errorf("not applied yet, head at commit 151 of 200: %d objects read, want at most 2", n)
	}
	if n := contains(heads[190], heads[185], true); n > 2*(190-185)+2 {
		t.Errorf("applied, head 5 commits later: %d objects read", n)
	}
}

// refusingHook is a pre-receive hook that refuses any push adding a path
// with "forbidden" in it, naming the path.
const refusingHook = `#!/bin/sh
while read old new ref; do
  if [ "$old" = 0000000000000000000000000000000000000000 ]; then
    paths=$(git ls-tree -r --name-only "$new")
  else
    paths=$(git diff --name-only "$old" "$new")
  fi
  for p in $paths; do
    case "$p" in *forbidden*) echo "policy: $p is not allowed here" >&2; exit 1;; esac
  done
done
`

// TestRefusedChangeFailsAlone: a change the server refuses (its
// pre-receive hook) fails with the server's message, and only it: writes
// queued with it are written.
func TestRefusedChangeFailsAlone(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	if err := os.WriteFile(filepath.Join(g.RepoDir("state"), "hooks", "pre-receive"), []byte(refusingHook), 0o755); err != nil {
		t.Fatal(err)
	}
	w := open(t, url, "")
	write(t, w, file("d/resources/ns/p/first", "x.yaml", "0"))

	// Hold the server so the next writes queue behind one in flight and
	// go out as one batch.
	g.Proxy.Hold()
	errs := make(chan error, 1)
	go func() {
		_, err := w.Write(context.Background(), "held", file("d/resources/ns/p/held", "x.yaml", "h"))
		errs <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the held write to reach the server", func() (bool, string) {
		return g.Proxy.Held() > 0, fmt.Sprintf("%d held", g.Proxy.Held())
	})
	dirs := []string{"d/resources/ns/p/a", "d/resources/ns/p/b", "d/resources/ns/p/forbidden", "d/resources/ns/p/c"}
	results := make([]chan error, len(dirs))
	for i, dir := range dirs {
		results[i] = make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := w.Write(ctx, dir, file(dir, "x.yaml", "x"))
			results[i] <- err
		}()
	}
	g.Proxy.Release()
	if err := <-errs; err != nil {
		t.Fatalf("held write: %v", err)
	}
	for i, dir := range dirs {
		err := <-results[i]
		switch {
		case strings.Contains(dir, "forbidden"):
			if !errors.Is(err, statestore.ErrRefused) || !strings.Contains(fmt.Sprint(err), "policy: d/resources/ns/p/forbidden/x.yaml is not allowed here") {
				t.Errorf("%s: %v, want the server's refusal", dir, err)
			}
		case err != nil:
			t.Errorf("%s failed with the refused one: %v", dir, err)
		}
	}
	files := testenv.Files(t, url)
	if len(files) != 5 || slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "forbidden") }) {
		t.Errorf("files %v, want the 5 allowed ones", files)
	}
}

// TestList lists the request directories Dirs lists, without their
// history; a missing directory and an empty repository list nothing.
func TestList(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	w := open(t, url, "clusters")
	if got, err := w.List("d/resources", 3); err != nil || len(got) != 0 {
		t.Fatalf("List on an empty repository = %v, %v", got, err)
	}
	write(t, w,
		statestore.Change{Dir: "d/resources", Files: map[string][]byte{statestore.CanaryFile: []byte("c\n")}},
		file("d/resources/ns/p/a", "x.yaml", "a\n"),
		file("d/resources/ns/q/b", "x.yaml", "b\n"),
		file("e/resources/ns/p/c", "x.yaml", "c\n"))
	write(t, w, file("d/resources/ns/p/a", "x.yaml", "a2\n"))
	got, err := w.List("d/resources", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d/resources/ns/p/a", "d/resources/ns/q/b"}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	dirs, err := w.Dirs("d/resources", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		if d.Path != got[i] || d.Commit == "" {
			t.Errorf("Dirs[%d] = %+v, want %s with its commit", i, d, got[i])
		}
	}
	if got, err := w.List("f/resources", 3); err != nil || len(got) != 0 {
		t.Fatalf("List of a missing directory = %v, %v", got, err)
	}
	if _, err := w.List("../x", 1); err == nil {
		t.Fatal("List of a path leaving the root succeeded")
	}
}
