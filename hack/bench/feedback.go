package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// feedbackResult is what -mode feedback measures: the router before any
// destination is watched, once all are, and after the requests.
type feedbackResult struct {
	WatchSeconds  float64      `json:"watchSeconds"`
	Before        routerSample `json:"before"`
	Watched       routerSample `json:"watched"`
	AfterRequests routerSample `json:"afterRequests"`
	// PerDestination is (Watched - Before) / destinations, and
	// PerDestinationAfterRequests (AfterRequests - Before) / destinations,
	// when each destination also watches the kinds its requests render.
	PerDestination              routerSample `json:"perDestination"`
	PerDestinationAfterRequests routerSample `json:"perDestinationAfterRequests"`
}

// routerSample is the router's memory and goroutines at one moment.
type routerSample struct {
	RSSMiB       float64 `json:"rssMiB"`
	HeapInuseMiB float64 `json:"heapInuseMiB"`
	Goroutines   float64 `json:"goroutines"`
}

func (s routerSample) minus(o routerSample, n int) routerSample {
	return routerSample{RSSMiB: (s.RSSMiB - o.RSSMiB) / float64(n), HeapInuseMiB: (s.HeapInuseMiB - o.HeapInuseMiB) / float64(n),
		Goroutines: (s.Goroutines - o.Goroutines) / float64(n)}
}

// sample reads the router once it is quiet (no work queued, its
// goroutines as many as 200 ms before, or 30 s passed), after a GC so that
// heap in use counts live objects.
func (r *routerProcess) sample() routerSample {
	prev := -1.0
	_ = poll(30*time.Second, func() (bool, error) {
		n := r.metric("go_goroutines")
		quiet := r.metric("workqueue_depth") == 0 && n == prev
		prev = n
		return quiet, nil
	})
	if resp, err := http.Get(r.pprof + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return routerSample{RSSMiB: r.statusMiB("VmRSS:"), HeapInuseMiB: r.metric("go_memstats_heap_inuse_bytes") / (1 << 20),
		Goroutines: r.metric("go_goroutines")}
}

// startDestination starts the API server every destination's kubeconfig
// points at, with Flux's CRDs and the ACK Table CRD (the DynamoDB Promise
// renders Tables, which the router watches there), but no Flux: the
// router's watches need the objects, not anyone reconciling them.
func (e *env) startDestination() error {
	fluxDir, err := testenv.FluxDir()
	if err != nil {
		return err
	}
	if e.dest, err = testenv.StartControlPlane(filepath.Join(fluxDir, "crds"), testenv.ACKTableCRD()); err != nil {
		return err
	}
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	e.destK8s, err = client.New(e.dest.Config, client.Options{Scheme: s})
	return err
}

// watchDestinations gives every destination a kubeconfig for the
// destination API server, its own user and its own Flux namespace there
// with the objects `router flux-manifests` prints, and times how long
// until the router watches them all.
func (e *env) watchDestinations() (*feedbackResult, error) {
	ctx := context.Background()
	var dests v1alpha1.DestinationList
	if err := e.k8s.List(ctx, &dests); err != nil {
		return nil, err
	}
	st, err := destinations.GetStore(ctx, e.k8s, dests.Items[0].Spec.StateStoreRef)
	if err != nil {
		return nil, err
	}
	res := &feedbackResult{Before: e.router.sample()}
	// A user per destination, as distinct clusters would have: one shared
	// kubeconfig would let client-go share one transport (and its
	// connections) between all of them. Made one at a time: envtest's CA
	// counts its serial numbers without a lock.
	kubeconfigs := make([][]byte, len(dests.Items))
	for i, d := range dests.Items {
		if kubeconfigs[i], err = e.dest.UserKubeConfig(d.Name, "system:masters"); err != nil {
			return nil, err
		}
	}
	step("creating %d namespaces with Flux objects on the destination API server, and their kubeconfig Secrets", len(dests.Items))
	err = parallel(len(dests.Items), e.o.clients, 0, func(i int) error {
		d := dests.Items[i]
		d.Spec.Flux.Namespace = d.Name
		if err := e.destK8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.Name}}); err != nil {
			return err
		}
		f := destinations.Flux(&d, st)
		for _, obj := range []client.Object{f.Source, f.Dependencies, f.Resources} {
			if err := e.destK8s.Create(ctx, obj); err != nil {
				return err
			}
		}
		return e.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-kubeconfig", Namespace: "default"},
			Data: map[string][]byte{feedback.KubeConfigKey: kubeconfigs[i]}})
	})
	if err != nil {
		return nil, err
	}
	step("setting spec.kubeConfigSecretRef on %d destinations", len(dests.Items))
	start := time.Now()
	err = parallel(len(dests.Items), e.o.clients, 0, func(i int) error {
		d := &dests.Items[i]
		patch := fmt.Sprintf(`{"spec":{"flux":{"namespace":%q},"kubeConfigSecretRef":{"name":"%s-kubeconfig","namespace":"default"}}}`, d.Name, d.Name)
		return e.k8s.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(patch)))
	})
	if err != nil {
		return nil, err
	}
	if err := poll(watchTimeout(len(dests.Items)), e.allWatched); err != nil {
		return nil, fmt.Errorf("not every destination watched: %w (Applied reasons: %v)", err, e.appliedReasons())
	}
	res.WatchSeconds = time.Since(start).Seconds()
	res.Watched = e.router.sample()
	res.PerDestination = res.Watched.minus(res.Before, len(dests.Items))
	return res, nil
}

// allWatched reports whether every destination is Ready with its current
// spec and its feedback watch has listed its Flux objects and found them
// (status.flux names them only once the watch has synced).
func (e *env) allWatched() (bool, error) {
	var dests v1alpha1.DestinationList
	if err := e.k8s.List(context.Background(), &dests); err != nil {
		return false, err
	}
	for _, d := range dests.Items {
		applied := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.AppliedCondition)
		if d.Status.ObservedGeneration != d.Generation || !meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.ReadyCondition) ||
			d.Status.Flux == nil || d.Status.Flux.GitRepository == "" || applied == nil || applied.Reason == v1alpha1.FluxNotFound {
			return false, nil
		}
	}
	return true, nil
}

// applyAll stands in for Flux once every request is Written: it sets each
// destination's resources Kustomization to have applied the head commit.
// Only then does the router read the objects requests rendered, so only
// then does each destination start its watch of their kinds (Tables).
// It waits until no request waits for Flux or for that watch.
func (e *env) applyAll() error {
	ctx := context.Background()
	head, err := testenv.GitE(e.git.RepoDir("bench"), "rev-parse", "main")
	if err != nil {
		return err
	}
	var dests v1alpha1.DestinationList
	if err := e.k8s.List(ctx, &dests); err != nil {
		return err
	}
	step("marking main@sha1:%s applied on %d destinations", head[:7], len(dests.Items))
	patch := []byte(fmt.Sprintf(`{"status":{"lastAppliedRevision":"main@sha1:%s"}}`, head))
	err = parallel(len(dests.Items), e.o.clients, 0, func(i int) error {
		d := &dests.Items[i]
		k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: d.FluxNamespace(), Name: d.FluxName() + "-resources"}}
		return e.destK8s.Status().Patch(ctx, k, client.RawPatch(types.MergePatchType, patch))
	})
	if err != nil {
		return err
	}
	// Requests waiting for Flux look again within 30 s even unwoken.
	return poll(2*time.Minute, func() (bool, error) {
		r := e.reasons()
		return r[v1alpha1.AwaitingFlux] == 0 && r[v1alpha1.AwaitingWatch] == 0 && r["none"] == 0, nil
	})
}

// watchTimeout allows 2 minutes, or half a second per destination: every
// one opens its own watches on the one destination API server, which
// shares the 2 cores with everything else.
func watchTimeout(destinations int) time.Duration {
	return max(2*time.Minute, time.Duration(destinations)*time.Second/2)
}

// appliedReasons counts the destinations by their Applied reason, to say
// why they were not all watched.
func (e *env) appliedReasons() map[string]int {
	var dests v1alpha1.DestinationList
	if err := e.k8s.List(context.Background(), &dests); err != nil {
		return map[string]int{err.Error(): 1}
	}
	out := map[string]int{}
	for _, d := range dests.Items {
		reason := "none"
		if c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.AppliedCondition); c != nil {
			reason = c.Reason
		}
		out[reason]++
	}
	return out
}
