package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Poll calls cond every 100ms until it returns true, ctx ends or timeout
// passes; the error then carries the last message cond gave.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), msg)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitFor polls cond until it returns true or timeout passes; then the test
// fails with the last message cond gave.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := Poll(context.Background(), timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
