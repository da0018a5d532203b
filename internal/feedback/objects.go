package feedback

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/readiness"
)

// objects is one destination's cache of the objects requests rendered:
// informers, started per kind on first use, that list and watch only
// objects carrying v1alpha1.RequestUIDLabel.
type objects struct {
	dest   string
	cache  cache.Cache
	mapper apimeta.RESTMapper
	owner  *Watchers

	mu      sync.Mutex
	watched map[schema.GroupVersionKind]toolscache.SharedIndexInformer
	// errs is the last list or watch error per kind, for messages.
	errs map[string]string
}

// newObjects builds the object cache of dest on cfg; it runs when started.
func newObjects(w *Watchers, dest string, cfg *rest.Config, hc *http.Client) (*objects, error) {
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	req, err := labels.NewRequirement(v1alpha1.RequestUIDLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	o := &objects{dest: dest, mapper: mapper, owner: w, watched: map[schema.GroupVersionKind]toolscache.SharedIndexInformer{}, errs: map[string]string{}}
	o.cache, err = cache.New(cfg, cache.Options{HTTPClient: hc, Scheme: runtime.NewScheme(), Mapper: mapper,
		DefaultLabelSelector: labels.NewSelector().Add(*req),
		DefaultTransform:     stripObject(cache.TransformStripManagedFields()),
		DefaultWatchErrorHandler: func(_ context.Context, r *toolscache.Reflector, err error) {
			o.mu.Lock()
			o.errs[r.TypeDescription()] = err.Error()
			o.mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// stripObject drops what nothing here reads: managed fields (often most of
// an object's size) and a Secret's data. Readiness never needs the data,
// and what the router does not hold it cannot copy into a request's
// status, where the request's team (or anyone who reads it) would see it.
func stripObject(managedFields toolscache.TransformFunc) toolscache.TransformFunc {
	return func(in any) (any, error) {
		out, err := managedFields(in)
		if u, ok := out.(*unstructured.Unstructured); ok && u.GetAPIVersion() == "v1" && u.GetKind() == "Secret" {
			delete(u.Object, "data")
			delete(u.Object, "stringData")
		}
		return out, err
	}
}

// Delays before a request looks again at objects that could not be read:
// soon while a watch lists (that costs nothing on the destination), later
// when the kind is not served or the watch cannot start (each look asks the
// destination's discovery again).
const (
	syncingRetry  = 2 * time.Second
	unservedRetry = 30 * time.Second
)

// informer returns the informer of gvk, starting it (and its event
// handler) on first use; or why it cannot serve reads yet and when to
// look again.
func (o *objects) informer(ctx context.Context, gvk schema.GroupVersionKind) (toolscache.SharedIndexInformer, string, time.Duration) {
	o.mu.Lock()
	inf := o.watched[gvk]
	o.mu.Unlock()
	if inf == nil {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		i, err := o.cache.GetInformer(ctx, u, cache.BlockUntilSynced(false))
		if err != nil {
			if apimeta.IsNoMatchError(err) {
				return nil, fmt.Sprintf("%s is not served on destination %s (yet)", gvk.GroupKind(), o.dest), unservedRetry
			}
			return nil, fmt.Sprintf("watching %s on destination %s: %v", gvk.GroupKind(), o.dest, err), unservedRetry
		}
		si, ok := i.(toolscache.SharedIndexInformer)
		if !ok {
			return nil, fmt.Sprintf("watching %s on destination %s: unexpected informer %T", gvk.GroupKind(), o.dest, i), unservedRetry
		}
		o.mu.Lock()
		if o.watched[gvk] == nil {
			o.watched[gvk] = si
			if _, err := si.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc: o.changed, UpdateFunc: func(_, n any) { o.changed(n) }, DeleteFunc: o.changed,
			}); err != nil {
				o.mu.Unlock()
				return nil, err.Error(), unservedRetry
			}
		}
		inf = o.watched[gvk]
		o.mu.Unlock()
	}
	if !inf.HasSynced() {
		why := ""
		o.mu.Lock()
		// A reflector of unstructured objects describes itself by GVK.
		if err := o.errs[gvk.String()]; err != "" {
			why = ": " + err
		}
		o.mu.Unlock()
		return nil, fmt.Sprintf("waiting for the router's watch of %s on destination %s to list it%s", gvk.GroupKind(), o.dest, why), syncingRetry
	}
	return inf, "", 0
}

// changed wakes the request whose label the object carries.
func (o *objects) changed(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := apimeta.Accessor(obj)
	if err != nil {
		return
	}
	o.owner.wakeRequest(m.GetLabels()[v1alpha1.RequestUIDLabel])
}

// read fills in Live of each object that is on the destination with label
// RequestUIDLabel=uid. It returns "" when every kind could be read, else
// why not and when to look again.
func (o *objects) read(ctx context.Context, uid string, objs []readiness.Object) (string, time.Duration) {
	for i := range objs {
		ob := &objs[i]
		ob.Live = nil
		if _, why, retry := o.informer(ctx, ob.GVK); why != "" {
			return why, retry
		}
		mapping, err := o.mapper.RESTMapping(ob.GVK.GroupKind(), ob.GVK.Version)
		if err != nil {
			return fmt.Sprintf("%s on destination %s: %v", ob.GVK.GroupKind(), o.dest, err), unservedRetry
		}
		switch {
		case mapping.Scope.Name() == apimeta.RESTScopeNameRoot:
			ob.Namespace = ""
		case ob.Namespace == "":
			ob.Namespace = "default"
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(ob.GVK)
		err = o.cache.Get(ctx, types.NamespacedName{Namespace: ob.Namespace, Name: ob.Name}, u)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Sprintf("reading %s on destination %s: %v", ob.ID(), o.dest, err), syncingRetry
		}
		// Another request's object of the same name is not this one's.
		if u.GetLabels()[v1alpha1.RequestUIDLabel] == uid {
			ob.Live = u
		}
	}
	return "", 0
}

// ObjectEvents returns the channel on which requests of kind gk are told
// that an object they rendered changed on a destination (a source for
// their controller). Call it before the controller starts.
func (w *Watchers) ObjectEvents(gk schema.GroupKind) <-chan event.GenericEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.events == nil {
		w.events = map[schema.GroupKind]chan event.GenericEvent{}
	}
	ch := w.events[gk]
	if ch == nil {
		ch = make(chan event.GenericEvent, 1024)
		w.events[gk] = ch
	}
	return ch
}

// Track records that request key (of kind gk) has UID uid, so that a
// change of an object labelled with uid wakes it.
func (w *Watchers) Track(uid string, gk schema.GroupKind, key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tracked == nil {
		w.tracked = map[string]tracked{}
	}
	w.tracked[uid] = tracked{gk: gk, key: key}
}

// Untrack forgets uid.
func (w *Watchers) Untrack(uid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.tracked, uid)
}

// UntrackKey forgets whatever UID request key of kind gk had, for a
// request found gone (its UID unknown then), so that the map does not grow
// with requests deleted without the router's finalizer.
func (w *Watchers) UntrackKey(gk schema.GroupKind, key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for uid, t := range w.tracked {
		if t.gk == gk && t.key == key {
			delete(w.tracked, uid)
		}
	}
}

type tracked struct {
	gk  schema.GroupKind
	key types.NamespacedName
}

func (w *Watchers) wakeRequest(uid string) {
	w.mu.Lock()
	t, ok := w.tracked[uid]
	ch := w.events[t.gk]
	w.mu.Unlock()
	if !ok || ch == nil {
		return
	}
	u := &unstructured.Unstructured{}
	u.SetNamespace(t.key.Namespace)
	u.SetName(t.key.Name)
	ch <- event.GenericEvent{Object: u}
}

// ReadObjects fills in Live of each of objs, the objects the request with
// UID uid rendered, from destination dest's watch: an object counts only
// when it carries that UID in v1alpha1.RequestUIDLabel. It returns "" when
// it could read them all, or why not (not watched yet, kind not served,
// no view of the destination) and when to look again.
func (w *Watchers) ReadObjects(ctx context.Context, dest, uid string, objs []readiness.Object) (string, time.Duration) {
	w.mu.Lock()
	wt := w.byDest[dest]
	s := w.states[dest]
	w.mu.Unlock()
	if wt == nil || wt.objects == nil {
		if s.Err != "" {
			return s.Err, unservedRetry
		}
		return fmt.Sprintf("the router does not follow destination %s", dest), unservedRetry
	}
	return wt.objects.read(ctx, uid, objs)
}

// objectReader reads one destination's watched objects.
type objectReader struct{ o *objects }

var _ client.Reader = objectReader{}

func (r objectReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, why, _ := r.o.informer(ctx, obj.GetObjectKind().GroupVersionKind()); why != "" {
		return fmt.Errorf("%s", why)
	}
	return r.o.cache.Get(ctx, key, obj, opts...)
}

func (r objectReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.o.cache.List(ctx, list, opts...)
}
