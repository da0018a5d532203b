package statestore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWriteAfterCloseReturns: a Write racing Close (or coming after it)
// must return ErrClosed, never wait for an answer nobody will send. The
// send into the queue and the stop signal are both ready after Close, so
// each Write picks one at random: 200 Writes make the losing pick all but
// certain if it wedges.
func TestWriteAfterCloseReturns(t *testing.T) {
	b := NewBatcher("test", 10, 1, Funcs{
		Write:     func(context.Context, []Write, int) ([]Result, error) { return nil, errors.New("unused") },
		Unchanged: func([]Change) (string, bool) { return "", false },
	})
	b.Close()
	done := make(chan error, 200)
	for range 200 {
		go func() {
			_, err := b.Write(context.Background(), "after close", []Change{{Dir: "d", Files: map[string][]byte{"f": []byte("x")}}})
			done <- err
		}()
	}
	deadline := time.After(10 * time.Second)
	for i := range 200 {
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Write after Close: %v, want ErrClosed", err)
			}
		case <-deadline:
			t.Fatalf("%d of 200 Writes after Close never returned", 200-i)
		}
	}
}
