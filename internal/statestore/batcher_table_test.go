package statestore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatcherPaths: one Write through a Batcher whose store answers as
// each case says: the result or error the caller gets, and how many
// batches the store saw.
func TestBatcherPaths(t *testing.T) {
	errDown, errNotHere, errAny := errors.New("connection refused"), errors.New("not here"), errors.New("any error")
	good := []Change{{Dir: "d/a", Files: map[string][]byte{"f": []byte("x")}, Replace: true}}
	for _, tc := range []struct {
		name    string
		changes []Change
		// store answers attempt n (from 0); nil writes.
		store func(attempt int) error
		// unchanged, when set, is the revision Unchanged reports.
		unchanged string
		check     error
		// during runs while the store is answering the first attempt.
		during func(b *Batcher, cancel context.CancelFunc)
		// blocks holds the store's answer until the caller's Write returned.
		blocks bool
		// wantErr is the error the caller gets (errors.Is); errAny: any.
		wantErr  error
		wantRev  string
		attempts int32
	}{
		{name: "written", changes: good, wantRev: "rev", attempts: 1},
		{name: "unchanged needs no batch", changes: good, unchanged: "head", wantRev: "head"},
		{name: "store's check refuses", changes: good, check: errNotHere, wantErr: errNotHere},
		{name: "path leaves its directory", changes: []Change{{Dir: "../x"}}, wantErr: errAny},
		{name: "failure then success", changes: good, attempts: 2, wantRev: "rev",
			store: func(n int) error {
				if n == 0 {
					return errDown
				}
				return nil
			}},
		{name: "failures exhaust the retries", changes: good, attempts: 3, wantErr: errDown,
			store: func(int) error { return errDown }},
		{name: "a refusal is not retried", changes: good, attempts: 1, wantErr: ErrRefused,
			store: func(int) error { return fmt.Errorf("%w: hook declined", ErrRefused) }},
		{name: "caller gives up", changes: good, attempts: 1, wantErr: context.Canceled, blocks: true,
			during: func(_ *Batcher, cancel context.CancelFunc) { cancel() }},
		{name: "closed while retrying", changes: good, wantErr: ErrClosed,
			store:  func(int) error { return errDown },
			during: func(b *Batcher, _ context.CancelFunc) { go b.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var b *Batcher
			entered, answered := make(chan struct{}, 10), make(chan struct{})
			b = NewBatcher("test", 10, 2, Funcs{
				Write: func(_ context.Context, batch []Write, attempt int) ([]Result, error) {
					attempts.Add(1)
					entered <- struct{}{}
					if tc.blocks {
						<-answered
					}
					if tc.store != nil {
						if err := tc.store(attempt); err != nil {
							return nil, err
						}
					}
					return []Result{{Commit: "rev", Changed: true}}, nil
				},
				Unchanged: func([]Change) (string, bool) { return tc.unchanged, tc.unchanged != "" },
				Check:     func(Change) error { return tc.check },
			})
			defer b.Close()
			if tc.during != nil {
				go func() {
					<-entered
					tc.during(b, cancel)
				}()
			}
			res, err := b.Write(ctx, tc.name, tc.changes)
			close(answered)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr == nil && res.Commit != tc.wantRev:
				t.Errorf("revision %q, want %q", res.Commit, tc.wantRev)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("no error, want %v", tc.wantErr)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if tc.attempts != 0 && attempts.Load() != tc.attempts {
				t.Errorf("%d batches, want %d", attempts.Load(), tc.attempts)
			}
			if tc.attempts == 0 && tc.during == nil && attempts.Load() != 0 {
				t.Errorf("%d batches, want none", attempts.Load())
			}
		})
	}
}
