package destinations

import (
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Open, SetReady and Forget are what the store reconcilers call.
func (s *Stores) Open(ref v1alpha1.StateStoreReference, key string, start func() (statestore.Writer, error)) (statestore.Writer, error) {
	return s.open(ref, key, start)
}

func (s *Stores) SetReady(ref v1alpha1.StateStoreReference, ready bool, message string) {
	s.setReady(ref, ready, message)
}

func (s *Stores) Forget(ref v1alpha1.StateStoreReference) { s.forget(ref) }
