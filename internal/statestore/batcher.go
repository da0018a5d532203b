package statestore

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/switchyard-dev/switchyard/internal/metrics"
)

// WriteBatch writes the Changes of a batch of Writes in one go (one commit,
// or one round of object writes) and returns one Result per Write, in
// order. attempt is 0 the first time and counts retries after an error.
// ctx ends when the Batcher is closed.
type WriteBatch func(ctx context.Context, batch []Write, attempt int) ([]Result, error)

// Unchanged reports whether changes would leave the store as it is, and
// then its current revision, without queueing: every reconcile after a
// restart costs no I/O.
type Unchanged func(changes []Change) (revision string, ok bool)

// Funcs are what a store kind gives its Batcher.
type Funcs struct {
	Write     WriteBatch
	Unchanged Unchanged
	// Check, when set, refuses Changes the store cannot take, after
	// Change.Check.
	Check func(Change) error
}

// Write is one caller's Write: its note and Changes.
type Write struct {
	Note    string
	Changes []Change
}

// Batcher runs the single goroutine of a Writer: every Write queued while
// the previous batch was being written goes into the next batch, so
// throughput grows with load instead of shrinking. A failed batch is
// retried with backoff from 100ms, doubling.
type Batcher struct {
	name     string
	maxBatch int
	retries  int
	funcs    Funcs
	ops      chan *op
	// ctx is cancelled by Close, so a batch in flight stops at once.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

type op struct {
	Write
	result chan opResult
}

type opResult struct {
	Result
	err error
}

// NewBatcher starts a batcher for the store name (the metrics label) with
// at most maxBatch Writes per batch (default 1000) and retries retries
// (default 5). Writes that f.Unchanged says change nothing are answered
// without a batch. Call Close to stop it.
func NewBatcher(name string, maxBatch, retries int, f Funcs) *Batcher {
	if maxBatch <= 0 {
		maxBatch = 1000
	}
	if retries <= 0 {
		retries = 5
	}
	b := &Batcher{name: name, maxBatch: maxBatch, retries: retries, funcs: f,
		ops: make(chan *op, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.loop()
	return b
}

// Write checks changes, answers at once when they change nothing, and
// otherwise queues them and waits for their Result: a Writer's Write.
func (b *Batcher) Write(ctx context.Context, note string, changes []Change) (Result, error) {
	for _, c := range changes {
		if err := c.Check(); err != nil {
			return Result{}, err
		}
		if b.funcs.Check != nil {
			if err := b.funcs.Check(c); err != nil {
				return Result{}, err
			}
		}
	}
	if rev, ok := b.funcs.Unchanged(changes); ok {
		return Result{Commit: rev}, nil
	}
	o := &op{Write: Write{Note: note, Changes: changes}, result: make(chan opResult, 1)}
	select {
	case b.ops <- o:
	case <-b.stop:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case r := <-o.result:
		return r.Result, r.err
	case <-b.done:
		// After Close both cases above were ready, and the send may have
		// won after loop drained the queue: nobody will answer it.
		select {
		case r := <-o.result:
			return r.Result, r.err
		default:
			return Result{}, ErrClosed
		}
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops the goroutine, cancelling the batch in flight; queued Writes
// fail with ErrClosed.
func (b *Batcher) Close() {
	b.cancel()
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

func (b *Batcher) loop() {
	defer close(b.done)
	for {
		var first *op
		select {
		case first = <-b.ops:
		case <-b.stop:
			b.failQueued()
			return
		}
		batch := []*op{first}
	drain:
		for len(batch) < b.maxBatch {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		metrics.QueueDepth.WithLabelValues(b.name).Set(float64(len(b.ops)))
		metrics.BatchSize.WithLabelValues(b.name).Observe(float64(len(batch)))
		b.run(batch)
	}
}

func (b *Batcher) failQueued() {
	for {
		select {
		case o := <-b.ops:
			o.result <- opResult{err: ErrClosed}
		default:
			return
		}
	}
}

// run writes the batch, retrying with backoff, and answers every Write.
// A batch the store refuses (ErrRefused) is not retried whole: its halves
// are run in turn, so only the Writes the store refuses fail, each with
// the store's own message.
func (b *Batcher) run(batch []*op) {
	writes := make([]Write, len(batch))
	for i, o := range batch {
		writes[i] = o.Write
	}
	results, err := b.write(writes)
	if err == nil {
		for i, o := range batch {
			o.result <- opResult{Result: results[i]}
		}
		return
	}
	if errors.Is(err, ErrRefused) && len(batch) > 1 {
		metrics.PushRetries.WithLabelValues(b.name).Inc()
		b.run(batch[:len(batch)/2])
		b.run(batch[len(batch)/2:])
		return
	}
	metrics.PushFailures.WithLabelValues(b.name).Inc()
	for _, o := range batch {
		o.result <- opResult{err: err}
	}
}

// write writes one batch, retrying failures other than a refusal with
// backoff from 100ms, doubling.
func (b *Batcher) write(writes []Write) ([]Result, error) {
	var results []Result
	var err error
	attempt := 0
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: b.retries + 1}
	werr := wait.ExponentialBackoffWithContext(b.ctx, backoff, func(ctx context.Context) (bool, error) {
		if attempt > 0 {
			metrics.PushRetries.WithLabelValues(b.name).Inc()
		}
		results, err = b.funcs.Write(ctx, writes, attempt)
		attempt++
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, ErrRefused):
			return false, err // the same content is refused again
		}
		return false, nil
	})
	switch {
	case werr == nil:
		return results, nil
	case b.ctx.Err() != nil:
		return nil, ErrClosed
	case err != nil:
		return nil, err
	}
	return nil, werr
}
