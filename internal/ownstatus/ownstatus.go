package ownstatus

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Changed passes the events a reconcile must see: creation, deletion, a
// spec change, a label or annotation change, and the start of deletion.
// Updates of status alone do not pass.
var Changed = predicate.Or[client.Object](
	predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{},
	predicate.AnnotationChangedPredicate{}, DeletionStarted)

// DeletionStarted passes the update that sets deletionTimestamp.
var DeletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// Pending holds, per object, the resourceVersion the controller's last
// status write produced, until a reconcile reads a copy at that version.
// A copy at another version may predate the write. The zero value is
// ready to use.
type Pending struct {
	mu sync.Mutex
	rv map[types.NamespacedName]string
}

// Seen reports whether obj is at the version of the last write recorded
// for it, or none is pending; a version seen is forgotten.
func (p *Pending) Seen(obj client.Object) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	rv, ok := p.rv[key]
	if !ok {
		return true
	}
	if rv != obj.GetResourceVersion() {
		return false
	}
	delete(p.rv, key)
	return true
}

// Wrote records obj's version after a status write.
func (p *Pending) Wrote(obj client.Object) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rv == nil {
		p.rv = map[types.NamespacedName]string{}
	}
	p.rv[client.ObjectKeyFromObject(obj)] = obj.GetResourceVersion()
}

// Forget drops what is held for an object that is gone.
func (p *Pending) Forget(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.rv, key)
}

// ConflictRetry is how soon a reconcile whose status write met a newer
// copy decides again, from a fresh one.
const ConflictRetry = 100 * time.Millisecond

// Patch writes obj's status as a merge patch from orig, the copy it was
// decided from, when changed or when orig may predate the last write
// recorded for it; and records the write. The patch carries orig's
// resourceVersion, so a status decided from a stale copy is refused with a
// conflict instead of overwriting a newer one.
func (p *Pending) Patch(ctx context.Context, c client.Client, obj, orig client.Object, changed bool) error {
	if !changed && p.Seen(orig) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	p.Wrote(obj)
	return nil
}
