package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Sweeper removes request directories (resources/<namespace>/<promise>/<name>
// under a destination's path) that no live request owns: files left by a
// request deleted while its finalizer was bypassed, or rewritten by a stale
// reconcile after its request removed them. It runs when this replica
// starts leading and then every Interval.
//
// It removes nothing it cannot prove orphaned. A directory is kept when
//   - listing destinations or Promises fails (the whole sweep stops);
//   - its destination is being deleted: cleanup and moves own its files;
//   - its store is not ready, or its directories cannot be listed;
//   - its Promise does not exist (its files cannot be told from another
//     writer's), is not Ready at its generation, or its requests' informer
//     has not synced (placement.Index.Primed), or listing them fails;
//   - any request of its Promise's kind has its namespace and name, on any
//     destination and in any state: being deleted (finalizer still on),
//     moving (its old copy is the move's), or misplaced;
//   - a request of a kind the Promise served before has them: spec.api
//     may change the kind, and the old kind's CRD (labelled with the
//     Promise, which the router leaves installed) keeps its requests,
//     whose directories have the same layout. When such a kind cannot be
//     listed (without the cache), nothing of the Promise's is removed;
//   - an uncached read of each of those kinds just before removal does
//     not answer NotFound;
//   - it has not been found orphaned for Grace, by sweeps of this process.
type Sweeper struct {
	// Client reads destinations, Promises and requests: the manager's cache.
	Client client.Reader
	// APIReader confirms, without the cache, that an orphan's request does
	// not exist, just before it is removed.
	APIReader client.Reader
	Stores    *destinations.Stores
	// Index says whether a Promise's requests are loaded; removals are
	// recorded in it and wake the destination's requests, so one that
	// wrote a swept directory in the meantime writes it again.
	Index    *placement.Index
	Recorder events.EventRecorder
	// Interval between sweeps (default 10 minutes). After an incomplete
	// or failed sweep the next comes sooner, backing off from 2 s.
	Interval time.Duration
	// Grace is how long a directory stays orphaned, sweep after sweep,
	// before it is removed (default 5 minutes): long enough for this
	// replica's cache to show a request that another replica (the
	// previous leader) just wrote. The store's own times are not used:
	// finding when a Git directory changed walks history.
	Grace time.Duration

	mu sync.Mutex
	// seen is when each orphan (by store and directory) was first found.
	seen map[string]time.Time
}

var _ manager.LeaderElectionRunnable = &Sweeper{}

// SweepResult says what one sweep removed and what it could not check.
type SweepResult struct {
	// Removed lists the directories removed, relative to their store.
	Removed []string
	// Incomplete says, per part kept, why it could not be checked.
	Incomplete []string
	// Pending lists orphans kept until they have been orphaned for Grace.
	Pending []string
}

// NeedLeaderElection: only the leader writes to the stores.
func (s *Sweeper) NeedLeaderElection() bool { return true }

func (s *Sweeper) interval() time.Duration {
	if s.Interval <= 0 {
		return 10 * time.Minute
	}
	return s.Interval
}

func (s *Sweeper) grace() time.Duration {
	if s.Grace <= 0 {
		return 5 * time.Minute
	}
	return s.Grace
}

// Start sweeps until ctx ends.
func (s *Sweeper) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("sweep")
	soon := func() *wait.Backoff {
		return &wait.Backoff{Duration: 2 * time.Second, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: s.interval()}
	}
	backoff := soon()
	for {
		res, err := s.Sweep(ctx)
		next := s.interval()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error(err, "Sweep failed; nothing removed")
			next = backoff.Step()
		case len(res.Incomplete) > 0:
			log.Info("Sweep incomplete; kept what it could not check", "removed", len(res.Removed), "kept", res.Incomplete)
			next = backoff.Step()
		default:
			backoff = soon()
		}
		if len(res.Pending) > 0 && s.grace() < next {
			next = s.grace()
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// orphan is a request directory found in a destination's files.
type orphan struct {
	dest                     *v1alpha1.Destination
	w                        statestore.Writer
	dir                      string
	namespace, promise, name string
}

// key identifies o's directory across destinations sharing a store.
func (o orphan) key() string {
	ref := o.dest.Spec.StateStoreRef
	ref.Kind = ref.EffectiveKind()
	return ref.String() + ":" + o.dir
}

// Sweep runs one sweep.
func (s *Sweeper) Sweep(ctx context.Context) (res SweepResult, err error) {
	defer func() {
		result := "complete"
		switch {
		case err != nil:
			result = "failed"
		case len(res.Incomplete) > 0:
			result = "incomplete"
		}
		metrics.Sweeps.WithLabelValues(result).Inc()
	}()
	var dests v1alpha1.DestinationList
	if err := s.Client.List(ctx, &dests); err != nil {
		return res, fmt.Errorf("listing destinations: %w", err)
	}
	// The files first, their owners after: a directory the router wrote
	// was written for a request its cache showed before, so the lists
	// read next show it too unless it is gone.
	found := s.found(dests.Items, &res)
	var promises v1alpha1.PromiseList
	if err := s.Client.List(ctx, &promises); err != nil {
		return res, fmt.Errorf("listing Promises: %w", err)
	}
	orphans := s.ripe(s.unowned(ctx, found, promises.Items, &res), &res)
	return res, s.remove(ctx, orphans, &res)
}

// ripe keeps the orphans found orphaned for Grace and records when the
// others were first found. An orphan missing from a sweep (owned again,
// or in a part that could not be checked) starts over.
func (s *Sweeper) ripe(orphans []orphan, res *SweepResult) []orphan {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	seen := make(map[string]time.Time, len(orphans))
	var out []orphan
	for _, o := range orphans {
		first, ok := s.seen[o.key()]
		if !ok {
			first = now
		}
		if now.Sub(first) >= s.grace() {
			out = append(out, o)
			continue
		}
		seen[o.key()] = first
		res.Pending = append(res.Pending, o.dir)
	}
	s.seen = seen
	return out
}

// found lists the request directories of every destination that may be
// swept.
func (s *Sweeper) found(dests []v1alpha1.Destination, res *SweepResult) []orphan {
	var out []orphan
	for i := range dests {
		d := &dests[i]
		if !d.DeletionTimestamp.IsZero() {
			res.Incomplete = append(res.Incomplete, fmt.Sprintf("destination %s: being deleted; its cleanup and moves own its files", d.Name))
			continue
		}
		w, err := s.Stores.Writer(d.Spec.StateStoreRef)
		if err != nil {
			res.Incomplete = append(res.Incomplete, fmt.Sprintf("destination %s: %v", d.Name, err))
			continue
		}
		root := path.Join(d.EffectivePath(), statestore.ResourcesDir)
		dirs, err := w.List(root, 3)
		if err != nil {
			res.Incomplete = append(res.Incomplete, fmt.Sprintf("destination %s: listing %s: %v", d.Name, root, err))
			continue
		}
		for _, dir := range dirs {
			parts := strings.Split(strings.TrimPrefix(dir, root+"/"), "/")
			if len(parts) != 3 {
				continue
			}
			out = append(out, orphan{dest: d, w: w, dir: dir, namespace: parts[0], promise: parts[1], name: parts[2]})
		}
	}
	return out
}

// unowned keeps, of found, the directories whose request does not exist.
func (s *Sweeper) unowned(ctx context.Context, found []orphan, promises []v1alpha1.Promise, res *SweepResult) []orphan {
	byName := map[string]*v1alpha1.Promise{}
	for i := range promises {
		byName[promises[i].Name] = &promises[i]
	}
	// Per Promise: its kinds, now and before, and their requests' keys;
	// nil when unknown.
	live := map[string]map[types.NamespacedName]bool{}
	kinds := map[string][]schema.GroupVersionKind{}
	var out []orphan
	for _, o := range found {
		p := byName[o.promise]
		if p == nil {
			continue // not the router's to tell apart from another writer's
		}
		owners, seen := live[p.Name]
		if !seen {
			var why string
			kinds[p.Name], owners, why = s.requests(ctx, p)
			live[p.Name] = owners
			if why != "" {
				res.Incomplete = append(res.Incomplete, fmt.Sprintf("Promise %s: %s", p.Name, why))
			}
		}
		nn := types.NamespacedName{Namespace: o.namespace, Name: o.name}
		if owners == nil || owners[nn] {
			continue
		}
		gone, err := s.confirmGone(ctx, kinds[p.Name], nn)
		if err != nil {
			res.Incomplete = append(res.Incomplete, fmt.Sprintf("%s: %v", o.dir, err))
			continue
		}
		if gone {
			out = append(out, o)
		}
	}
	return out
}

// requests returns the kinds of p, its kind first and then those it
// served before, and the keys of their requests: its kind's from the
// cache, the others' from the API server. Keys are nil, with why, when
// they cannot all be known.
func (s *Sweeper) requests(ctx context.Context, p *v1alpha1.Promise) ([]schema.GroupVersionKind, map[types.NamespacedName]bool, string) {
	_, gvk, err := RequestCRD(p)
	if err != nil {
		return nil, nil, fmt.Sprintf("invalid API: %v", err)
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != p.Generation {
		return nil, nil, "not Ready at its generation; its requests cannot be listed"
	}
	if !s.Index.Primed(p.Name) {
		return nil, nil, "its requests' cache has not synced"
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	// Names only: no copy of every request (300 MB at 100,000).
	if err := s.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Sprintf("listing %s: %v", gvk.Kind, err)
	}
	keys := make(map[types.NamespacedName]bool, len(list.Items))
	for i := range list.Items {
		keys[client.ObjectKeyFromObject(&list.Items[i])] = true
	}
	former, err := s.formerKinds(ctx, p, gvk)
	if err != nil {
		return nil, nil, err.Error()
	}
	for _, k := range former {
		// Uncached: no informer runs for a kind no controller of this
		// process serves, and starting one would wait for it to sync.
		// Names only: the sweep needs no more.
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(k.GroupVersion().WithKind(k.Kind + "List"))
		if err := s.APIReader.List(ctx, list); err != nil {
			return nil, nil, fmt.Sprintf("listing %s, a kind it served before: %v", k.Kind, err)
		}
		for i := range list.Items {
			keys[client.ObjectKeyFromObject(&list.Items[i])] = true
		}
	}
	return append([]schema.GroupVersionKind{gvk}, former...), keys, ""
}

// formerKinds returns the kinds of the CRDs installed for p (labelled
// with it) other than its kind now, gvk: kinds p served before its
// spec.api changed. The router leaves their CRDs, and their requests,
// in place.
func (s *Sweeper) formerKinds(ctx context.Context, p *v1alpha1.Promise, gvk schema.GroupVersionKind) ([]schema.GroupVersionKind, error) {
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := s.Client.List(ctx, &crds, client.MatchingLabels{v1alpha1.PromiseLabel: p.Name}); err != nil {
		return nil, fmt.Errorf("listing the CRDs installed for it: %w", err)
	}
	var out []schema.GroupVersionKind
	for i := range crds.Items {
		spec := &crds.Items[i].Spec
		gk := schema.GroupKind{Group: spec.Group, Kind: spec.Names.Kind}
		if gk == gvk.GroupKind() {
			continue
		}
		served := ""
		for _, v := range spec.Versions {
			if v.Served {
				served = v.Name
				break
			}
		}
		if served == "" {
			return nil, fmt.Errorf("CRD %s, installed for it, serves no version: its %s requests cannot be listed", crds.Items[i].Name, gk.Kind)
		}
		out = append(out, gk.WithVersion(served))
	}
	return out, nil
}

// confirmGone asks the API server, bypassing the cache, whether the
// request nn is gone in every one of kinds.
func (s *Sweeper) confirmGone(ctx context.Context, kinds []schema.GroupVersionKind, nn types.NamespacedName) (bool, error) {
	for _, gvk := range kinds {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := s.APIReader.Get(ctx, nn, u)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return false, fmt.Errorf("reading %s %s: %w", gvk.Kind, nn, err)
		}
		return false, nil
	}
	return true, nil
}

// remove removes the orphans, one write per destination, and reports it.
func (s *Sweeper) remove(ctx context.Context, orphans []orphan, res *SweepResult) error {
	byDest := map[string][]orphan{}
	var names []string
	for _, o := range orphans {
		if byDest[o.dest.Name] == nil {
			names = append(names, o.dest.Name)
		}
		byDest[o.dest.Name] = append(byDest[o.dest.Name], o)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		group := byDest[name]
		d, w := group[0].dest, group[0].w
		changes := make([]statestore.Change, len(group))
		dirs := make([]string, len(group))
		for i, o := range group {
			changes[i] = statestore.Change{Dir: o.dir, Replace: true}
			dirs[i] = o.dir
		}
		r, err := w.Write(ctx, fmt.Sprintf("sweep %d director(ies) no request owns from %s", len(group), d.Name), changes...)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing orphans from destination %s: %w", d.Name, err))
			continue
		}
		res.Removed = append(res.Removed, dirs...)
		metrics.OrphansSwept.WithLabelValues(d.Name).Add(float64(len(dirs)))
		ctrl.Log.WithName("sweep").Info("Removed directories no request owns", "destination", d.Name, "commit", r.Commit, "dirs", dirs)
		s.Recorder.Eventf(d, nil, corev1.EventTypeNormal, v1alpha1.OrphansSwept, "Sweep",
			"Removed %d request director(ies) no live request owns at %s: %s", len(dirs), statestore.Short(r.Commit), summary(dirs, 10))
		if r.Changed {
			s.Index.Committed(d.Name, r.Commit)
		}
		// A request written into one of them meanwhile writes it again.
		s.Index.Wake(d.Name)
	}
	return errors.Join(errs...)
}

// summary joins the first n of items and counts the rest.
func summary(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
