package statestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// refuser is a WriteBatch that refuses every batch holding a Write whose
// note starts with "bad", as a pre-receive hook refuses a whole push, and
// records the size of every batch it was given. gate, when set, holds the
// first batch until it is closed.
type refuser struct {
	mu      sync.Mutex
	batches []int
	gate    chan struct{}
	fail    error // returned for every batch when set (an unreachable store)
}

func (f *refuser) write(ctx context.Context, batch []Write, _ int) ([]Result, error) {
	f.mu.Lock()
	f.batches = append(f.batches, len(batch))
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.fail != nil {
		return nil, f.fail
	}
	for _, w := range batch {
		if strings.HasPrefix(w.Note, "bad") {
			return nil, fmt.Errorf("%w: pre-receive hook declined: %s is not allowed", ErrRefused, w.Changes[0].Dir)
		}
	}
	out := make([]Result, len(batch))
	for i := range out {
		out[i] = Result{Commit: "c", Changed: true}
	}
	return out, nil
}

func change(dir string) []Change {
	return []Change{{Dir: dir, Files: map[string][]byte{"f": []byte("x")}, Replace: true}}
}

// TestRefusedWriteFailsAlone: one Write the store refuses, queued with
// seven good ones, fails alone with the store's message; the good ones
// are written. Without isolation the whole batch of eight failed.
func TestRefusedWriteFailsAlone(t *testing.T) {
	gate := make(chan struct{})
	f := &refuser{gate: gate}
	b := NewBatcher("test", 100, 2, Funcs{Write: f.write, Unchanged: func([]Change) (string, bool) { return "", false }})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type answer struct {
		note string
		err  error
	}
	answers := make(chan answer, 9)
	write := func(note string) {
		_, err := b.Write(ctx, note, change("d/"+note))
		answers <- answer{note, err}
	}
	go write("first") // held by the gate: the rest queue behind it
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.batches) == 1, nil
	}); err != nil {
		t.Fatal("the first batch never started")
	}
	notes := []string{"good-1", "good-2", "good-3", "bad-4", "good-5", "good-6", "good-7", "good-8"}
	for _, n := range notes {
		go write(n)
	}
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(b.ops) == len(notes), nil
	}); err != nil {
		t.Fatalf("%d of %d writes queued", len(b.ops), len(notes))
	}
	close(gate)

	for range len(notes) + 1 {
		a := <-answers
		switch {
		case a.note == "bad-4" && !(errors.Is(a.err, ErrRefused) && strings.Contains(a.err.Error(), "d/bad-4 is not allowed")):
			t.Errorf("%s: %v, want the store's refusal", a.note, a.err)
		case a.note != "bad-4" && a.err != nil:
			t.Errorf("%s failed with the bad write: %v", a.note, a.err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The batch of 8 is refused once, then split in halves (4 refused,
	// 4 written), and so on down to the bad Write alone: no retry repeats
	// a refused batch whole. (Where the bad Write sits in the queue
	// changes the order, not the sizes.)
	got := slices.Clone(f.batches)
	slices.Sort(got)
	if want := []int{1, 1, 1, 2, 2, 4, 4, 8}; !slices.Equal(got, want) {
		t.Errorf("batch sizes %v, want %v in some order", f.batches, want)
	}
}
