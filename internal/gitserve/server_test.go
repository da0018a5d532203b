package gitserve_test

import (
	"context"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/gitserve"
	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// serve starts a Server on loopback, deciding pushes with canPush (nil:
// the default), and a Writer pushing to its repository "state"; both stop
// when the test ends. CanPush is set before the server starts: a change
// later would race its handlers.
func serve(t *testing.T, canPush func(*http.Request) bool) (*gitserve.Server, string, *gitstate.Writer) {
	t.Helper()
	s := &gitserve.Server{Dir: t.TempDir(), CanPush: canPush}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	url := srv.URL + "/state.git"
	w, err := gitstate.Open(gitstate.Config{URL: url, Dir: t.TempDir(), AuthorName: "t", AuthorEmail: "t@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return s, url, w
}

func TestWriterPushesAndGitClones(t *testing.T) {
	_, url, w := serve(t, nil)
	ctx := context.Background()
	var last statestore.Result
	var err error
	for _, n := range []string{"a", "b"} {
		if last, err = w.Write(ctx, "write "+n, statestore.Change{Dir: "dest/resources/" + n, Files: map[string][]byte{"x.yaml": []byte("n: " + n + "\n")}}); err != nil {
			t.Fatalf("push %s: %v", n, err)
		}
	}
	dir := t.TempDir()
	testenv.Git(t, "", "clone", "-q", url, dir)
	if head := testenv.Git(t, dir, "rev-parse", "HEAD"); head != last.Commit {
		t.Errorf("served head %s, writer's commit %s", head, last.Commit)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dest/resources/b/x.yaml")); err != nil || string(b) != "n: b\n" {
		t.Errorf("cloned file: %q, %v", b, err)
	}
	// An incremental fetch (with haves) after another commit.
	if _, err := w.Write(ctx, "write c", statestore.Change{Dir: "dest/resources/c", Files: map[string][]byte{"x.yaml": []byte("n: c\n")}}); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, dir, "pull", "-q", "--ff-only")
	if _, err := os.Stat(filepath.Join(dir, "dest/resources/c/x.yaml")); err != nil {
		t.Errorf("after pull: %v", err)
	}
	if out, err := testenv.GitE(dir, "fsck", "--full"); err != nil {
		t.Errorf("git fsck: %v: %s", err, out)
	}
}

func TestReadOnlyFromElsewhere(t *testing.T) {
	var readOnly atomic.Bool
	_, url, w := serve(t, func(*http.Request) bool { return !readOnly.Load() })
	base := strings.TrimSuffix(url, "/state.git")
	dir := t.TempDir()
	if _, err := w.Write(context.Background(), "seed", statestore.Change{Dir: "d", Files: map[string][]byte{"f": []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, "", "clone", "-q", url, dir)
	testenv.Git(t, dir, "commit", "-q", "--allow-empty", "-m", "not allowed")

	readOnly.Store(true) // as for a non-loopback client
	out, err := testenv.GitE(dir, "push", "-q", "origin", "HEAD:main")
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("push from a client CanPush refuses: err %v, output %q; want a 403", err, out)
	}
	for _, path := range []string{"/../x.git/info/refs?service=git-upload-pack", "/state.git/HEAD", "/state.git/objects/info/packs"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("GET %s: %d, want refused (only smart HTTP, only repositories by name)", path, resp.StatusCode)
		}
	}
}

func TestStalePushIsRefused(t *testing.T) {
	srv := httptest.NewServer(&gitserve.Server{Dir: t.TempDir()})
	defer srv.Close()
	url := srv.URL + "/state.git"
	a, b := t.TempDir(), t.TempDir()
	for _, w := range []string{a, b} {
		testenv.Git(t, "", "init", "-q", "--initial-branch=main", w)
		testenv.Git(t, w, "remote", "add", "origin", url)
	}
	testenv.Git(t, a, "commit", "-q", "--allow-empty", "-m", "first")
	testenv.Git(t, a, "push", "-q", "origin", "main")
	// b never saw a's commit: creating main again must fail.
	testenv.Git(t, b, "commit", "-q", "--allow-empty", "-m", "other")
	if out, err := testenv.GitE(b, "push", "-q", "origin", "main"); err == nil {
		t.Errorf("a push that did not see the head was accepted: %s", out)
	}
	got := testenv.Git(t, "", "ls-remote", url, "refs/heads/main")
	if want := testenv.Git(t, a, "rev-parse", "HEAD"); !strings.HasPrefix(got, want) {
		t.Errorf("main is %q, want %s", got, want)
	}
}

// TestShallowCloneLikeFlux clones the way Flux's source-controller does:
// go-git, one branch, depth 1.
func TestShallowCloneLikeFlux(t *testing.T) {
	_, url, w := serve(t, nil)
	var res statestore.Result
	var err error
	for _, n := range []string{"a", "b"} {
		if res, err = w.Write(context.Background(), n, statestore.Change{Dir: n, Files: map[string][]byte{"f": []byte(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: url, Depth: 1, SingleBranch: true,
		ReferenceName: plumbing.NewBranchReferenceName("main")})
	if err != nil {
		t.Fatalf("shallow clone: %v", err)
	}
	head, err := repo.Head()
	if err != nil || head.Hash().String() != res.Commit {
		t.Fatalf("head %v (%v), want %s", head, err, res.Commit)
	}
}
