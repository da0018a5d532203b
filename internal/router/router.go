// Package router wires the Switchyard reconcilers into a controller-runtime
// manager. cmd/router and the integration tests both start the router
// through it, so tests run exactly what ships.
package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/gitserve"
	"github.com/switchyard-dev/switchyard/internal/kubeconfig"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/probe"
	"github.com/switchyard-dev/switchyard/internal/secretref"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// Options tune the router.
type Options struct {
	// DataDir holds the state stores' local clones.
	DataDir string
	// RequestWorkers is the concurrency of each request controller; it is
	// also the largest number of requests one commit can batch.
	RequestWorkers int
	// StoreInterval is how often a Ready state store is checked.
	StoreInterval time.Duration
	// MaxBatch caps the writes in one commit; 1 makes one commit per
	// request (the baseline the benchmark compares against).
	MaxBatch int
	// ProbeConcurrency caps the health probes running at once (default 8).
	ProbeConcurrency int
	// Namespace is the router's own: the only namespace whose Secrets it
	// reads, unless AllowCrossNamespaceRefs. Empty means switchyard-system.
	Namespace string
	// AllowCrossNamespaceRefs lets stores and destinations name Secrets in
	// any namespace (the admin must also grant get on them).
	AllowCrossNamespaceRefs bool
	// ServeGit, when set, is the address where the router serves the
	// repositories under DataDir/served over smart HTTP (read-only except
	// from loopback), so a GitStateStore can use
	// http://127.0.0.1:<port>/<name>.git and needs no Git server.
	ServeGit string
	// SweepInterval is how often request directories no live request owns
	// are removed (see controller.Sweeper); 0 means 10 minutes, negative
	// disables the sweep.
	SweepInterval time.Duration
	// SweepGrace is how long a directory must be found orphaned before
	// the sweep removes it; 0 means 5 minutes.
	SweepGrace time.Duration
	// InsecureKubeConfig is what the kubeconfigs of Destinations'
	// kubeConfigSecretRef may use beyond inline credentials; the zero value
	// refuses exec, auth-provider and insecure-skip-tls-verify.
	InsecureKubeConfig kubeconfig.Insecure
	// PipelineImage is the router's image, run as the first and last
	// container of each workflow Job (`router pipeline read|write`).
	PipelineImage string
}

// ManagerOptions completes manager options with what the router needs: its
// scheme, a client that reads requests (unstructured objects) from the
// cache, as it reads every other kind, instead of from the API server, and
// a cache of only the CRDs Promises installed: a cluster may hold hundreds
// of CRDs with large schemas, and the router reads no other. namespace is
// the router's own, where its workflow Jobs run.
func ManagerOptions(o ctrl.Options, namespace string) ctrl.Options {
	o.Scheme = Scheme()
	o.Client.Cache = &client.CacheOptions{Unstructured: true}
	o.Cache.DefaultTransform = trimForCache
	installed, err := labels.NewRequirement(v1alpha1.PromiseLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key
	}
	if o.Cache.ByObject == nil {
		o.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	o.Cache.ByObject[&apiextensionsv1.CustomResourceDefinition{}] = cache.ByObject{Label: labels.NewSelector().Add(*installed)}
	// Only the workflow Jobs the router made, which all run in its
	// namespace (empty: DefaultNamespace).
	if namespace == "" {
		namespace = DefaultNamespace
	}
	o.Cache.ByObject[&batchv1.Job{}] = cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}},
		Label: labels.SelectorFromSet(labels.Set{workflow.ManagedByLabel: workflow.ManagedBy})}
	return o
}

// MetricsOptions serves metrics at addr. Secure, as kubebuilder does by
// default: HTTPS, and only to clients the API server authenticates
// (TokenReview) and authorises for get on /metrics (SubjectAccessReview);
// config/rbac/metrics_reader_role.yaml grants that.
func MetricsOptions(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if secure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// trimForCache drops from cached objects what the router never reads:
// managedFields (most of a small object; an update without them keeps the
// server's), a Namespace's spec and status (only its labels are read), and
// of a request (the only unstructured kind cached) kubectl's
// last-applied-configuration annotation (a second copy of the request) and
// every top-level field but apiVersion, kind, metadata, spec and status.
// Requests only: the router patches their finalizers, while it updates
// Promises and Destinations whole, which would drop the annotation.
func trimForCache(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	m.SetManagedFields(nil)
	switch o := obj.(type) {
	case *corev1.Namespace:
		o.Spec, o.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{}
	case *unstructured.Unstructured:
		if a := o.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" {
			delete(a, corev1.LastAppliedConfigAnnotation)
			o.SetAnnotations(a)
		}
		for k := range o.Object {
			switch k {
			case "apiVersion", "kind", "metadata", "spec", "status":
			default:
				delete(o.Object, k)
			}
		}
	}
	return obj, nil
}

// Scheme has every kind the router reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme, kratixv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// serveGit serves the router's own repositories while this replica leads:
// the leader is the one that pushes to them.
func serveGit(addr, dir string) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		srv := &http.Server{Addr: addr, Handler: &gitserve.Server{Dir: dir}, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		ctrl.Log.WithName("gitserve").Info("Serving state repositories", "address", addr, "dir", dir)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("--serve-git %s: %w", addr, err)
		}
		return nil
	})
}

// DefaultNamespace is where config/ installs the router.
const DefaultNamespace = "switchyard-system"

// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=switchyard-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// Leader election records its events (core/v1) beside the lease.
// +kubebuilder:rbac:groups="",namespace=switchyard-system,resources=events,verbs=create;patch

// Setup registers the reconcilers with mgr. The returned Stores must be
// closed after the manager stops.
func Setup(mgr ctrl.Manager, o Options) (*destinations.Stores, error) {
	if o.RequestWorkers <= 0 {
		o.RequestWorkers = 128
	}
	stores := destinations.NewStores(o.DataDir)
	stores.MaxBatch = o.MaxBatch
	index := placement.New()
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	secrets := &secretref.Reader{Reader: mgr.GetAPIReader(), Namespace: o.Namespace, AllowCrossNamespace: o.AllowCrossNamespaceRefs}
	watchers := &feedback.Watchers{SecretReader: secrets, Wake: index.Wake, Insecure: o.InsecureKubeConfig}
	if err := mgr.Add(watchers); err != nil {
		return nil, err
	}
	index.OnCommit = watchers.Nudge
	if o.ProbeConcurrency <= 0 {
		o.ProbeConcurrency = 8
	}
	prober := probe.New(secrets, o.ProbeConcurrency)
	// The table probe reads the request's Table object on the destination.
	prober.Objects = watchers
	if o.ServeGit != "" {
		if err := mgr.Add(serveGit(o.ServeGit, filepath.Join(o.DataDir, "served"))); err != nil {
			return nil, err
		}
	}
	// Stop the writers with the reconcilers, when this replica stops
	// leading, so none is still writing when the manager releases the lease
	// (LeaderElectionReleaseOnCancel) and another replica starts. Closing
	// twice is harmless: callers still Close the Stores when the manager
	// has stopped.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		stores.Close()
		return nil
	})); err != nil {
		return nil, err
	}
	recorder := mgr.GetEventRecorder("switchyard-router")
	// One claims index for every request kind: claims compete across
	// Promises.
	claimIndex := claims.New()
	storeChecks := &destinations.StoreReconciler{Client: mgr.GetClient(), SecretReader: secrets,
		Stores: stores, Index: index, Interval: o.StoreInterval, Recorder: recorder}
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{
		&destinations.GitStateStoreReconciler{StoreReconciler: storeChecks},
		&destinations.BucketStateStoreReconciler{StoreReconciler: storeChecks},
		&destinations.DestinationReconciler{Client: mgr.GetClient(), Recorder: recorder, Stores: stores, Index: index, Feedback: watchers},
		&controller.PromiseReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
			Stores: stores, Index: index, Claims: claimIndex, Feedback: watchers, Prober: prober, Manager: mgr, RequestWorkers: o.RequestWorkers,
			Workflows: &controller.Workflows{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Image: o.PipelineImage, Namespace: o.Namespace}},
		&controller.KratixPromiseReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder},
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			stores.Close()
			return nil, fmt.Errorf("setting up %T: %w", r, err)
		}
	}
	if o.SweepInterval >= 0 {
		sweeper := &controller.Sweeper{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Stores: stores, Index: index,
			Recorder: recorder, Interval: o.SweepInterval, Grace: o.SweepGrace}
		if err := mgr.Add(sweeper); err != nil {
			stores.Close()
			return nil, err
		}
	}
	return stores, nil
}
