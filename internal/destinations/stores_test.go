package destinations_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// storesFixture is a Stores whose writers are real gitstate writers on a
// real Git server.
type storesFixture struct {
	s   *destinations.Stores
	dir string
	g   *testenv.GitServer
	url string
	ref v1alpha1.StateStoreReference
	// started counts the writers start opened; first is the first.
	started int
	first   statestore.Writer
}

func newStoresFixture(t *testing.T) *storesFixture {
	g := testenv.StartGitServer(t)
	dir := t.TempDir()
	f := &storesFixture{s: destinations.NewStores(dir), dir: dir, g: g, url: g.NewRepo(t, "state"),
		ref: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "state"}}
	t.Cleanup(f.s.Close)
	return f
}

// start opens a writer on the fixture's repository.
func (f *storesFixture) start() (statestore.Writer, error) {
	f.started++
	w, err := gitstate.Open(gitstate.Config{URL: f.url, Dir: filepath.Join(f.dir, fmt.Sprintf("clone-%d", f.started)),
		Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword), Retries: 1})
	if f.first == nil && err == nil {
		f.first = w
	}
	return w, err
}

func failing() (statestore.Writer, error) { return nil, errors.New("the credentials are wrong") }

func (f *storesFixture) open(t *testing.T, key string) statestore.Writer {
	t.Helper()
	w, err := f.s.Open(f.ref, key, f.start)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func writeOne(w statestore.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := w.Write(ctx, "test", statestore.Change{Dir: "d/resources/ns/p/a", Files: map[string][]byte{"a.yaml": []byte("a")}, Replace: true})
	return err
}

// TestStores walks the registry's life cycle: each step acts on the Stores
// and says what Writer(ref) must then answer.
func TestStores(t *testing.T) {
	type check struct {
		// notReady is the StoreNotReadyError message Writer must return;
		// "" means Writer returns a writer that writes.
		notReady string
		// oldClosed: the writer opened before the step now fails with
		// ErrClosed.
		oldClosed bool
		started   int
	}
	tests := []struct {
		name  string
		steps func(t *testing.T, f *storesFixture)
		want  check
	}{
		{"never opened", func(t *testing.T, f *storesFixture) {}, check{notReady: "not found or not reconciled yet"}},
		{"opened, not checked yet", func(t *testing.T, f *storesFixture) { f.open(t, "k1") },
			check{notReady: "checking the store", started: 1}},
		{"ready", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
		}, check{started: 1}},
		{"not ready says why", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, false, "repository unreachable")
		}, check{notReady: "repository unreachable", started: 1}},
		{"same key keeps the writer", func(t *testing.T, f *storesFixture) {
			w := f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
			if again := f.open(t, "k1"); again != w {
				t.Error("the same key opened a new writer")
			}
		}, check{started: 1}},
		{"a new key closes the old writer and waits for a check", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
			f.open(t, "k2")
		}, check{notReady: "checking the store", oldClosed: true, started: 2}},
		{"a failed start forgets the store", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
			if _, err := f.s.Open(f.ref, "k2", failing); err == nil || !strings.Contains(err.Error(), "credentials are wrong") {
				t.Errorf("open with a failing start: %v", err)
			}
		}, check{notReady: "not found or not reconciled yet", oldClosed: true, started: 1}},
		{"forget closes the writer", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
			f.s.Forget(f.ref)
		}, check{notReady: "not found or not reconciled yet", oldClosed: true, started: 1}},
		{"Close closes every writer", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.SetReady(f.ref, true, "")
			f.s.Close()
		}, check{notReady: "not found or not reconciled yet", oldClosed: true, started: 1}},
		{"no writer starts after Close", func(t *testing.T, f *storesFixture) {
			f.open(t, "k1")
			f.s.Close()
			// A reconcile still running when the router stops leading
			// must not leave a writer behind.
			if _, err := f.s.Open(f.ref, "k2", f.start); !errors.Is(err, statestore.ErrClosed) {
				t.Errorf("open after Close: %v, want ErrClosed", err)
			}
		}, check{notReady: "not found or not reconciled yet", oldClosed: true, started: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newStoresFixture(t)
			tt.steps(t, f)
			if f.started != tt.want.started {
				t.Errorf("%d writers started, want %d", f.started, tt.want.started)
			}
			w, err := f.s.Writer(f.ref)
			var nr *destinations.StoreNotReadyError
			switch {
			case tt.want.notReady == "" && err != nil:
				t.Errorf("Writer: %v, want a writer", err)
			case tt.want.notReady == "" && err == nil:
				if err := writeOne(w); err != nil {
					t.Errorf("writing through the store: %v", err)
				}
			case !errors.As(err, &nr) || !strings.Contains(nr.Message, tt.want.notReady):
				t.Errorf("Writer: %v, want a StoreNotReadyError saying %q", err, tt.want.notReady)
			}
			if tt.want.oldClosed {
				if err := writeOne(f.first); !errors.Is(err, statestore.ErrClosed) {
					t.Errorf("the replaced writer wrote: %v, want ErrClosed", err)
				}
			}
		})
	}
}

// The router closes the Stores when it stops leading while store
// reconciles may still open, replace and forget writers: every writer is
// closed exactly once, whatever the order.
func TestStoresCloseRacesReconciles(t *testing.T) {
	g := testenv.StartGitServer(t)
	url := g.NewRepo(t, "state")
	dir := t.TempDir()
	s := destinations.NewStores(dir)
	var mu sync.Mutex
	var opened []statestore.Writer
	start := func(i int) func() (statestore.Writer, error) {
		return func() (statestore.Writer, error) {
			w, err := gitstate.Open(gitstate.Config{URL: url, Dir: filepath.Join(dir, fmt.Sprintf("clone-%d", i)),
				Auth: gitstate.BasicAuth(testenv.GitUser, testenv.GitPassword)})
			if err == nil {
				mu.Lock()
				opened = append(opened, w)
				mu.Unlock()
			}
			return w, err
		}
	}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		ref := v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: fmt.Sprintf("s%d", r%2)}
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				_, _ = s.Open(ref, fmt.Sprint(i), start(r*100+i))
				if i%3 == 0 {
					s.Forget(ref)
				}
			}
		})
	}
	wg.Go(s.Close)
	wg.Wait()
	s.Close()
	for i, w := range opened {
		if err := writeOne(w); !errors.Is(err, statestore.ErrClosed) {
			t.Errorf("writer %d is still open after Close: %v", i, err)
		}
	}
}

// Rotating a store's Secret replaces its writer while request workers are
// writing through the old one: their Writes end, none waits for good.
func TestStoresReplaceEndsWritesInFlight(t *testing.T) {
	f := newStoresFixture(t)
	f.open(t, "k1")
	f.s.SetReady(f.ref, true, "")
	w, err := f.s.Writer(f.ref)
	if err != nil {
		t.Fatal(err)
	}
	f.g.Proxy.Hold()
	t.Cleanup(f.g.Proxy.Release)
	done := make(chan error, 1)
	go func() {
		// No deadline of its own: only closing the writer can end it.
		_, err := w.Write(context.Background(), "test", statestore.Change{Dir: "d/resources/ns/p/a", Replace: true,
			Files: map[string][]byte{"a.yaml": []byte("a")}})
		done <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the write to reach the server", func() (bool, string) {
		return f.g.Proxy.Held() > 0, fmt.Sprintf("%d held", f.g.Proxy.Held())
	})
	replaced := make(chan struct{})
	go func() {
		defer close(replaced)
		f.open(t, "k2")
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the write through the replaced writer succeeded while the server hung")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write in flight did not end when its writer was replaced")
	}
	select {
	case <-replaced:
	case <-time.After(10 * time.Second):
		t.Fatal("opening the new writer waited for the hung server")
	}
}
