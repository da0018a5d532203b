package router_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// pushOrphans commits files as another writer would and pushes them.
func pushOrphans(t *testing.T, url string, files ...string) {
	t.Helper()
	dir := testenv.Clone(t, url)
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphan\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		testenv.Git(t, dir, "add", f)
	}
	testenv.Git(t, dir, "commit", "-q", "-m", "files no request owns")
	testenv.Git(t, dir, "push", "-q", "origin", "main")
}

// TestOrphansAreSwept: files of a request that no longer exists (left
// while the router was down) are removed when the router starts; a live
// request's files and a directory of a Promise that does not exist stay.
func TestOrphansAreSwept(t *testing.T) {
	_, url := scenario(t, "orphan")
	stop := lastStop
	newDestination(t, "orphan-1", "orphan", labels("orphan"))
	newNamespace(t, "team-orphan")
	createRequest(t, "team-orphan", "live", tableSpec("live", "orphan", nil))
	waitReadyRequest(t, "team-orphan", "live")
	ghost := requestFile("orphan-1", "team-orphan", "ghost")
	foreign := "clusters/orphan-1/resources/team-orphan/nopromise/x/a.yaml"
	stop()
	pushOrphans(t, url, ghost, foreign)
	// No grace: the orphan goes at the second sweep after the start.
	startRouterWith(t, routerConfig, router.Options{DataDir: t.TempDir(), StoreInterval: 2 * time.Second, SweepGrace: time.Nanosecond})

	testenv.WaitFor(t, 60*time.Second, "the orphan swept", func() (bool, string) {
		files := testenv.Files(t, url)
		return !contains(files, ghost), strings.Join(files, " ")
	})
	files := testenv.Files(t, url)
	if !contains(files, requestFile("orphan-1", "team-orphan", "live")) || !contains(files, foreign) {
		t.Fatalf("the sweep removed more than the orphan: %v", files)
	}
}
