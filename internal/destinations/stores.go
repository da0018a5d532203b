package destinations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Stores holds one Writer per state store. It is safe for concurrent use.
type Stores struct {
	dir string
	// MaxBatch caps the writes in one commit (0: the writer's default).
	MaxBatch int

	mu sync.Mutex
	m  map[string]*store
}

type store struct {
	w       statestore.Writer
	key     string
	ready   bool
	message string
}

// NewStores keeps clones under dir.
func NewStores(dir string) *Stores {
	return &Stores{dir: dir, m: map[string]*store{}}
}

// StoreNotReadyError says why a store cannot be written yet.
type StoreNotReadyError struct{ Name, Message string }

func (e *StoreNotReadyError) Error() string {
	return fmt.Sprintf("state store %s is not ready: %s", e.Name, e.Message)
}

// Writer returns the writer of the named store when the store is Ready.
func (s *Stores) Writer(name string) (statestore.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	switch {
	case !ok:
		return nil, &StoreNotReadyError{Name: name, Message: "not found or not reconciled yet"}
	case !st.ready:
		return nil, &StoreNotReadyError{Name: name, Message: st.message}
	}
	return st.w, nil
}

// open returns the writer for name, reopening it when key (a hash of its
// configuration and credentials) changed.
func (s *Stores) open(name, key string, cfg gitstate.Config) (statestore.Writer, error) {
	s.mu.Lock()
	st, ok := s.m[name]
	s.mu.Unlock()
	if ok && st.key == key {
		return st.w, nil
	}
	if ok {
		st.w.Close()
	}
	// A new URL or branch gets a new clone directory; new credentials keep it.
	cfg.Dir = filepath.Join(s.dir, name+"-"+hash(cfg.URL, cfg.Branch)[:12])
	cfg.Name = name
	cfg.MaxBatch = s.MaxBatch
	w, err := gitstate.Open(cfg)
	if err != nil {
		s.forget(name)
		return nil, err
	}
	s.mu.Lock()
	s.m[name] = &store{w: w, key: key, message: "checking the repository"}
	s.mu.Unlock()
	return w, nil
}

func (s *Stores) setReady(name string, ready bool, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[name]; ok {
		st.ready, st.message = ready, message
	}
}

func (s *Stores) forget(name string) {
	s.mu.Lock()
	st, ok := s.m[name]
	delete(s.m, name)
	s.mu.Unlock()
	if ok {
		st.w.Close()
	}
}

// Close stops every writer.
func (s *Stores) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.m {
		st.w.Close()
		delete(s.m, name)
	}
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
