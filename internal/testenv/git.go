package testenv

import (
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
)

// Test credentials of the Git server. They are fake and appear in tests
// only, which check that they never leak.
const (
	GitUser     = "switchyard"
	GitPassword = "s3cret-test-token-4f1c"
)

var quietGitServer sync.Once

// GitServer is a smart-HTTP Git server with basic auth, reached through a
// Proxy so tests can take it down and bring it back on the same URL.
type GitServer struct {
	srv   *gittestserver.GitServer
	Proxy *Proxy
}

// StartGitServer starts a server; it stops when the test ends.
func StartGitServer(t testing.TB) *GitServer {
	t.Helper()
	g, err := NewGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// NewGitServer starts a server; Close stops it.
func NewGitServer() (*GitServer, error) {
	quietGitServer.Do(func() { log.SetOutput(io.Discard) }) // it logs every HTTP request
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		return nil, err
	}
	srv.Auth(GitUser, GitPassword)
	if err := srv.StartHTTP(); err != nil {
		return nil, err
	}
	u, err := url.Parse(srv.HTTPAddress())
	if err != nil {
		return nil, err
	}
	p, err := NewProxy(u.Host)
	if err != nil {
		return nil, err
	}
	return &GitServer{srv: srv, Proxy: p}, nil
}

// Close stops the server and removes its repositories.
func (g *GitServer) Close() {
	g.Proxy.Stop()
	g.srv.StopHTTP()
	os.RemoveAll(g.srv.Root())
}

// NewRepo creates an empty bare repository and returns its URL (without
// credentials).
func (g *GitServer) NewRepo(t testing.TB, name string) string {
	t.Helper()
	url, err := g.CreateRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// CreateRepo is NewRepo returning the error.
func (g *GitServer) CreateRepo(name string) (string, error) {
	if out, err := GitE("", "init", "--quiet", "--bare", "--initial-branch=main", g.RepoDir(name)); err != nil {
		return "", fmt.Errorf("git init: %v: %s", err, out)
	}
	return "http://" + g.Proxy.Addr + "/" + name + ".git", nil
}

// RepoDir is the server-side directory of a repository, for git fsck.
func (g *GitServer) RepoDir(name string) string {
	return filepath.Join(g.srv.Root(), name+".git")
}

// AuthURL adds the test credentials to a repository URL, for the git CLI.
func AuthURL(repoURL string) string {
	u, _ := url.Parse(repoURL)
	u.User = url.UserPassword(GitUser, GitPassword)
	return u.String()
}

// Git runs the git CLI in dir and returns its trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := GitE(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// GitE is Git returning the error instead of failing the test.
func GitE(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=other", "GIT_AUTHOR_EMAIL=other@example.com",
		"GIT_COMMITTER_NAME=other", "GIT_COMMITTER_EMAIL=other@example.com")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Clone clones the main branch of repoURL with the git CLI into a temp dir.
func Clone(t testing.TB, repoURL string) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, "", "clone", "--quiet", "--branch", "main", AuthURL(repoURL), dir)
	return dir
}

// Files lists every file at the head of main, read with the git CLI.
func Files(t testing.TB, repoURL string) []string {
	t.Helper()
	dir := Clone(t, repoURL)
	out := Git(t, dir, "ls-tree", "-r", "--name-only", "HEAD")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// PushOtherCommit commits a file as another writer would, with the git CLI,
// pushes it to main and returns the commit.
func PushOtherCommit(t testing.TB, repoURL, name, content string) string {
	t.Helper()
	dir := Clone(t, repoURL)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, "add", name)
	Git(t, dir, "commit", "-q", "-m", "another writer adds "+name)
	Git(t, dir, "push", "-q", "origin", "main")
	return Git(t, dir, "rev-parse", "HEAD")
}

// CheckHistoryKeeps fails the test unless commit is an ancestor of main's
// head and main's history has no merge: nothing was force-pushed away.
func CheckHistoryKeeps(t testing.TB, repoURL, commit string) {
	t.Helper()
	dir := Clone(t, repoURL)
	if _, err := GitE(dir, "merge-base", "--is-ancestor", commit, "HEAD"); err != nil {
		t.Fatalf("commit %s is not in main's history: force push?", commit)
	}
	if merges := Git(t, dir, "rev-list", "--merges", "HEAD"); merges != "" {
		t.Fatalf("history is not linear: merges %s", merges)
	}
}
