package destinations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Stores holds one Writer per state store, of either kind. It is safe for
// concurrent use.
type Stores struct {
	dir string
	// MaxBatch caps the writes in one commit or bucket batch (0: the
	// writer's default).
	MaxBatch int

	// life serialises opening, replacing and closing writers, so two
	// writers never share a clone directory and none starts after Close;
	// it is held while a writer opens (local disk only, no network).
	life   sync.Mutex
	closed bool
	// mu guards m, for lookups that must not wait for a writer to open.
	mu sync.Mutex
	m  map[string]*store
}

type store struct {
	w       statestore.Writer
	key     string
	ready   bool
	message string
}

// NewStores keeps Git clones under dir.
func NewStores(dir string) *Stores {
	return &Stores{dir: dir, m: map[string]*store{}}
}

// StoreNotReadyError says why a store cannot be written yet.
type StoreNotReadyError struct{ Name, Message string }

func (e *StoreNotReadyError) Error() string {
	return fmt.Sprintf("state store %s is not ready: %s", e.Name, e.Message)
}

// Writer returns the writer of the referenced store when the store is
// Ready.
func (s *Stores) Writer(ref v1alpha1.StateStoreReference) (statestore.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[ref.String()]
	switch {
	case !ok:
		return nil, &StoreNotReadyError{Name: ref.Name, Message: "not found or not reconciled yet"}
	case !st.ready:
		return nil, &StoreNotReadyError{Name: ref.Name, Message: st.message}
	}
	return st.w, nil
}

// open returns the writer for ref, starting a new one with start when key
// (a hash of its configuration and credentials) changed. After Close it
// fails with statestore.ErrClosed.
func (s *Stores) open(ref v1alpha1.StateStoreReference, key string, start func() (statestore.Writer, error)) (statestore.Writer, error) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil, fmt.Errorf("state store %s: %w", ref.Name, statestore.ErrClosed)
	}
	s.mu.Lock()
	st, ok := s.m[ref.String()]
	s.mu.Unlock()
	if ok && st.key == key {
		return st.w, nil
	}
	if ok {
		// Closed before the new writer opens on the same clone.
		s.drop(ref)
	}
	w, err := start()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.m[ref.String()] = &store{w: w, key: key, message: "checking the store"}
	s.mu.Unlock()
	return w, nil
}

// drop removes ref's writer, if any, and closes it. Callers hold life.
func (s *Stores) drop(ref v1alpha1.StateStoreReference) {
	s.mu.Lock()
	st, ok := s.m[ref.String()]
	delete(s.m, ref.String())
	s.mu.Unlock()
	if ok {
		st.w.Close()
	}
}

func (s *Stores) setReady(ref v1alpha1.StateStoreReference, ready bool, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[ref.String()]; ok {
		st.ready, st.message = ready, message
	}
}

func (s *Stores) forget(ref v1alpha1.StateStoreReference) {
	s.life.Lock()
	defer s.life.Unlock()
	s.drop(ref)
}

// Close stops every writer; no writer opens afterwards. Closing twice is
// harmless.
func (s *Stores) Close() {
	s.life.Lock()
	defer s.life.Unlock()
	s.closed = true
	s.mu.Lock()
	m := s.m
	s.m = map[string]*store{}
	s.mu.Unlock()
	for _, st := range m {
		st.w.Close()
	}
}

// StoreObject is a state store of either kind, as destinations and Flux
// see it.
type StoreObject struct {
	Git    *v1alpha1.GitStateStore
	Bucket *v1alpha1.BucketStateStore
}

// Path is the directory (key prefix) under which the store's destinations
// live.
func (o StoreObject) Path() string {
	if o.Bucket != nil {
		return o.Bucket.Spec.Path
	}
	return o.Git.Spec.Path
}

// GetStore reads the store ref names. A missing store is a NotFound error.
func GetStore(ctx context.Context, c client.Reader, ref v1alpha1.StateStoreReference) (StoreObject, error) {
	key := types.NamespacedName{Name: ref.Name}
	switch ref.EffectiveKind() {
	case v1alpha1.GitStateStoreKind:
		var st v1alpha1.GitStateStore
		err := c.Get(ctx, key, &st)
		return StoreObject{Git: &st}, err
	case v1alpha1.BucketStateStoreKind:
		var st v1alpha1.BucketStateStore
		err := c.Get(ctx, key, &st)
		return StoreObject{Bucket: &st}, err
	}
	return StoreObject{}, apierrors.NewBadRequest("unknown state store kind " + ref.Kind)
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// OpenStore opens a writer on the store ref names, with the credentials its
// Secret holds (Git clones go under dir), and reads the store. It is for
// the inspection commands; the router keeps its writers in Stores.
func OpenStore(ctx context.Context, c client.Reader, ref v1alpha1.StateStoreReference, dir string) (statestore.Writer, error) {
	st, err := GetStore(ctx, c, ref)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	var w statestore.Writer
	var cond *metav1.Condition
	if st.Bucket != nil {
		var cfg bucketstate.Config
		if cfg, _, cond = bucketConfig(ctx, c, st.Bucket); cond == nil {
			w, err = bucketstate.Open(cfg)
		}
	} else {
		var cfg gitstate.Config
		if cfg, _, cond = gitConfig(ctx, c, st.Git, dir); cond == nil {
			cfg.Dir = filepath.Join(dir, "clone")
			w, err = gitstate.Open(cfg)
		}
	}
	if cond != nil {
		return nil, fmt.Errorf("%s: %s", cond.Reason, cond.Message)
	}
	if err != nil {
		return nil, err
	}
	if _, _, err := w.Refresh(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}
