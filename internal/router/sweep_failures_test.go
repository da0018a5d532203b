package router_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// sweepFixture is a placed request, a request being deleted (the router is
// stopped, so its finalizer stays) and an orphan, in one Git store.
type sweepFixture struct {
	url                     string
	ghost, live, held, gone string
	stores                  *destinations.Stores
}

func newSweepFixture(t *testing.T) *sweepFixture {
	_, url := scenario(t, "sweep")
	stopRouter := lastStop
	newDestination(t, "sweep-1", "sweep", labels("sweep"))
	newNamespace(t, "team-sweep")
	f := &sweepFixture{url: url,
		live:  requestFile("sweep-1", "team-sweep", "live"),
		held:  requestFile("sweep-1", "team-sweep", "held"),
		ghost: requestFile("sweep-1", "team-sweep", "ghost"),
		gone:  "clusters/sweep-1/resources/team-sweep/nopromise/x/a.yaml",
	}
	for _, name := range []string{"live", "held"} {
		createRequest(t, "team-sweep", name, tableSpec(name, "sweep", nil))
		waitReadyRequest(t, "team-sweep", name)
	}
	// Deleted while no router runs: its finalizer holds it, it still owns
	// its files.
	stopRouter()
	held := dynamoDBRequest("team-sweep", "held", nil)
	if err := k8s.Delete(ctx(t), held); err != nil {
		t.Fatal(err)
	}
	pushOrphans(t, url, f.ghost, f.gone)
	// A router for the cleanup, which lets the held request go.
	t.Cleanup(func() { startRouter(t); waitGone(t, held, 30*time.Second) })

	f.stores = destinations.NewStores(t.TempDir())
	t.Cleanup(f.stores.Close)
	return f
}

// TestSweepNeverRemovesOnFailure runs one sweep per injected failure, each
// of which leaves the sweep without a complete view of who owns the
// orphan: nothing may be removed. Then a sweep with nothing failing
// removes the orphan alone, and reports it.
func TestSweepNeverRemovesOnFailure(t *testing.T) {
	f := newSweepFixture(t)
	injected := apierrors.NewServiceUnavailable("injected")
	failList := func(match func(client.ObjectList) bool) interceptor.Funcs {
		return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if match(list) {
				return injected
			}
			return c.List(ctx, list, opts...)
		}}
	}
	isRequests := func(l client.ObjectList) bool {
		u, ok := l.(*unstructured.UnstructuredList)
		return ok && u.GetKind() == requestGVK.Kind+"List"
	}
	editList := func(edit func(client.ObjectList)) interceptor.Funcs {
		return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			err := c.List(ctx, list, opts...)
			edit(list)
			return err
		}}
	}
	tests := []struct {
		name      string
		cached    interceptor.Funcs // the cached reader's reads
		api       interceptor.Funcs // the uncached confirmation's reads
		unsynced  bool              // the request informer has not synced
		storeDown bool              // the store is not Ready in the router
	}{
		{name: "listing destinations fails", cached: failList(func(l client.ObjectList) bool { _, ok := l.(*v1alpha1.DestinationList); return ok })},
		{name: "listing Promises fails", cached: failList(func(l client.ObjectList) bool { _, ok := l.(*v1alpha1.PromiseList); return ok })},
		{name: "listing requests fails", cached: failList(isRequests)},
		{name: "request informer not synced", unsynced: true},
		{name: "confirming the orphan fails", api: interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			return injected
		}}},
		{name: "the Promise fails to load", cached: editList(func(l client.ObjectList) {
			if pl, ok := l.(*v1alpha1.PromiseList); ok {
				for i := range pl.Items {
					meta.SetStatusCondition(&pl.Items[i].Status.Conditions, metav1.Condition{Type: v1alpha1.ReadyCondition,
						Status: metav1.ConditionFalse, Reason: v1alpha1.InvalidAPI, ObservedGeneration: pl.Items[i].Generation})
				}
			}
		})},
		{name: "the destination is being deleted (cleanup and moves own its files)", cached: editList(func(l client.ObjectList) {
			if dl, ok := l.(*v1alpha1.DestinationList); ok {
				now := metav1.Now()
				for i := range dl.Items {
					dl.Items[i].DeletionTimestamp = &now
				}
			}
		})},
		{name: "the store is not ready", storeDown: true},
	}
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	head := testenv.Git(t, testenv.Clone(t, f.url), "rev-parse", "HEAD")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stores := f.stores
			if tt.storeDown {
				stores = destinations.NewStores(t.TempDir())
				defer stores.Close()
			} else {
				openStore(t, f.stores, "sweep")
			}
			index := placement.New()
			index.SetPrimed("dynamodb", func() bool { return !tt.unsynced })
			// No grace: the second sweep would remove what the first found.
			s := &controller.Sweeper{Client: interceptor.NewClient(wc, tt.cached), APIReader: interceptor.NewClient(wc, tt.api),
				Stores: stores, Index: index, Recorder: events.NewFakeRecorder(10), Grace: time.Nanosecond}
			for range 2 {
				res, err := s.Sweep(ctx(t))
				if len(res.Removed) > 0 || len(res.Pending) > 0 {
					t.Errorf("removed %v, found orphaned %v", res.Removed, res.Pending)
				}
				if err == nil && len(res.Incomplete) == 0 {
					t.Errorf("the sweep says it was complete (error nil, nothing incomplete)")
				}
				t.Logf("error: %v; incomplete: %v", err, res.Incomplete)
			}
			if now := testenv.Git(t, testenv.Clone(t, f.url), "rev-parse", "HEAD"); now != head {
				t.Errorf("a commit was made (%s -> %s)", head, now)
			}
		})
	}

	t.Run("nothing fails", func(t *testing.T) {
		openStore(t, f.stores, "sweep")
		index := placement.New()
		index.SetPrimed("dynamodb", func() bool { return true })
		recorder := events.NewFakeRecorder(10)
		before := testutil.ToFloat64(metrics.OrphansSwept.WithLabelValues("sweep-1"))
		want := filepath.Dir(strings.TrimPrefix(f.ghost, "clusters/"))
		// Within the grace an orphan is only noted.
		patient := &controller.Sweeper{Client: wc, APIReader: wc, Stores: f.stores, Index: index, Recorder: recorder, Grace: time.Hour}
		for range 2 {
			if res, err := patient.Sweep(ctx(t)); err != nil || len(res.Removed) > 0 || !slices.Equal(res.Pending, []string{want}) {
				t.Fatalf("sweep within the grace: removed %v, pending %v (want [%s]), error %v", res.Removed, res.Pending, want, err)
			}
		}
		s := &controller.Sweeper{Client: wc, APIReader: wc, Stores: f.stores, Index: index, Recorder: recorder, Grace: time.Nanosecond}
		if res, err := s.Sweep(ctx(t)); err != nil || len(res.Removed) > 0 {
			t.Fatalf("first sweep: removed %v, error %v", res.Removed, err)
		}
		res, err := s.Sweep(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Removed) != 1 || res.Removed[0] != want {
			t.Errorf("removed %v, want [%s]", res.Removed, want)
		}
		files := testenv.Files(t, f.url)
		if contains(files, f.ghost) {
			t.Error("the orphan is still there")
		}
		for _, kept := range []string{f.live, f.held, f.gone} {
			if !contains(files, kept) {
				t.Errorf("%s was removed", kept)
			}
		}
		if got := testutil.ToFloat64(metrics.OrphansSwept.WithLabelValues("sweep-1")) - before; got != 1 {
			t.Errorf("switchyard_orphans_swept_total{destination=sweep-1} grew by %v, want 1", got)
		}
		select {
		case e := <-recorder.Events:
			if !strings.Contains(e, v1alpha1.OrphansSwept) || !strings.Contains(e, "team-sweep/dynamodb/ghost") {
				t.Errorf("event %q", e)
			}
		default:
			t.Error("no event")
		}
	})
}
