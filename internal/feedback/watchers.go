package feedback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/kubeconfig"
	"github.com/switchyard-dev/switchyard/internal/secretref"
)

// KubeConfigKey is the key of the kubeconfig in a kubeConfigSecretRef
// Secret (the name Cluster API and Flux use too).
const KubeConfigKey = "value"

// syncTimeout bounds the first list of a destination's Flux objects.
const syncTimeout = 30 * time.Second

// requestTimeout bounds each request to a destination's API server.
var requestTimeout = 30 * time.Second

// readQPS is the client-side rate limit of the client watching rendered
// objects per destination: lists when a kind is first watched, and
// relists.
const readQPS = 50

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// Watchers follows Flux on every destination that has a kubeconfig. It is
// a manager runnable: Start returns when the manager stops, and stops
// every watch.
type Watchers struct {
	// SecretReader reads kubeconfig Secrets by name (uncached, so the
	// router needs no list or watch on Secrets).
	SecretReader client.Reader

	// Wake is told the destination whose Flux state changed.
	Wake func(dest string)

	// Insecure is what kubeconfigs may use beyond inline credentials (the
	// --insecure-kubeconfig-* flags). Others are refused before any client
	// is built.
	Insecure kubeconfig.Insecure

	mu     sync.Mutex
	byDest map[string]*watch
	states map[string]State
	// events and tracked route changes of rendered objects to requests
	// (objects.go).
	events  map[schema.GroupKind]chan event.GenericEvent
	tracked map[string]tracked
}

type watch struct {
	key    string
	cancel context.CancelFunc
	client client.Client
	// objects is the cache of the objects requests rendered there.
	objects *objects
	// nudge asks for a fetch of the source; nudgeResources for a new try
	// of the resources Kustomization.
	nudge, nudgeResources chan struct{}
	// resourcesNudged is the revision the last nudgeResources was for.
	resourcesNudged string
}

// Start blocks until ctx ends, then stops every watch.
func (w *Watchers) Start(ctx context.Context) error {
	<-ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, wt := range w.byDest {
		wt.cancel()
		delete(w.byDest, name)
	}
	return nil
}

// State returns what the router sees of Flux on destination name.
func (w *Watchers) State(name string) State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.states[name]
}

// Reader returns a reader of the objects requests rendered on destination
// name, for checks that read one (the ACK Table a request rendered, say).
// It reads the router's watch there, which holds only objects carrying
// v1alpha1.RequestUIDLabel. It fails when the router does not follow the
// destination: no kubeConfigSecretRef, or an unusable one.
func (w *Watchers) Reader(name string) (client.Reader, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.byDest[name]; wt != nil {
		return objectReader{wt.objects}, nil
	}
	if s, ok := w.states[name]; ok && s.Err != "" {
		return nil, errors.New(s.Err)
	}
	return nil, fmt.Errorf("the router does not follow destination %s (it has no spec.kubeConfigSecretRef)", name)
}

// Nudge asks Flux on destination name to fetch now. It does not wait; a
// nudge during a nudge makes one more, so the last commit is never missed.
func (w *Watchers) Nudge(name string) {
	w.mu.Lock()
	wt := w.byDest[name]
	w.mu.Unlock()
	if wt == nil {
		return
	}
	select {
	case wt.nudge <- struct{}{}:
	default:
	}
}

// NudgeBehind nudges destination name when the router sees Flux there and
// its source does not have commit yet. (Not when it has: a nudge that
// changes nothing must not wake anything again.)
func (w *Watchers) NudgeBehind(name, commit string, contains Contains) {
	s := w.State(name)
	if !s.Configured || s.Err != "" {
		return
	}
	if head := SHA(s.Source.Revision); head != "" {
		if ok, _ := contains(head, commit); ok {
			return
		}
	}
	w.Nudge(name)
}

// Forget stops following destination name and drops its state.
func (w *Watchers) Forget(name string) {
	w.stop(name)
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.states, name)
}

// stop stops the watch of destination name, keeping its last state: Ensure
// then sets the new one, which wakes the destination only when it differs.
// (Dropping the state would make every set a change, and every destination
// reconcile wake the destination again: a loop.)
func (w *Watchers) stop(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.byDest[name]; wt != nil {
		wt.cancel()
	}
	delete(w.byDest, name)
}

// Ensure starts, restarts or stops the watch of d to match its spec. Only
// a failed read of the platform API server is returned as an error;
// problems with the destination are in its State.
func (w *Watchers) Ensure(ctx context.Context, d *v1alpha1.Destination) error {
	ref := d.Spec.KubeConfigSecretRef
	if ref == nil {
		w.stop(d.Name)
		w.set(d.Name, State{})
		return nil
	}
	var secret corev1.Secret
	if err := w.SecretReader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &secret); err != nil {
		msg := fmt.Sprintf("kubeconfig Secret %s/%s not found", ref.Namespace, ref.Name)
		switch {
		case errors.Is(err, secretref.ErrCrossNamespace):
			msg = err.Error()
		case !apierrors.IsNotFound(err):
			return err
		}
		w.stop(d.Name)
		w.set(d.Name, State{Configured: true, Err: msg})
		return nil
	}
	raw := secret.Data[KubeConfigKey]
	if len(raw) == 0 {
		w.stop(d.Name)
		w.set(d.Name, State{Configured: true, Err: fmt.Sprintf("Secret %s/%s has no key %q holding a kubeconfig", ref.Namespace, ref.Name, KubeConfigKey)})
		return nil
	}
	// Checked on every Ensure, before anything else is done with it.
	cfg, err := kubeconfig.RESTConfig(raw, w.Insecure)
	if err != nil {
		w.stop(d.Name)
		w.set(d.Name, State{Configured: true, Refused: errors.As(err, new(*kubeconfig.RefusedError)),
			Err: fmt.Sprintf("the kubeconfig in Secret %s/%s is %v", ref.Namespace, ref.Name, err)})
		return nil
	}
	sum := sha256.Sum256(append(raw, []byte("\x00"+d.FluxNamespace()+"\x00"+d.FluxName()+"\x00"+sourceKind(d))...))
	key := hex.EncodeToString(sum[:])
	w.mu.Lock()
	current := w.byDest[d.Name]
	w.mu.Unlock()
	if current != nil && current.key == key {
		return nil
	}
	w.stop(d.Name)
	// What the old watch saw (another cluster, or another source kind) is
	// not this one's: unknown until the new watch has synced.
	w.set(d.Name, State{Configured: true, SourceKind: sourceKind(d)})
	if err := w.start(d, key, cfg); err != nil {
		w.set(d.Name, State{Configured: true, Err: err.Error()})
	}
	return nil
}

// start watches d's Flux objects through cfg, built by kubeconfig.RESTConfig.
func (w *Watchers) start(d *v1alpha1.Destination, key string, cfg *rest.Config) error {
	cfg = withRequestTimeout(cfg, requestTimeout)
	ns, name := d.FluxNamespace(), d.FluxName()
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return fmt.Errorf("watching the destination: %v", err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("connecting to the destination: %v", err)
	}
	// The watches of rendered objects get their own client, so that
	// client-go's limiter (5 requests/s by default) never queues a Flux
	// nudge behind their lists.
	objCfg := rest.CopyConfig(cfg)
	objCfg.QPS, objCfg.Burst = readQPS, 2*readQPS
	hc, err := rest.HTTPClientFor(objCfg)
	if err != nil {
		return fmt.Errorf("connecting to the destination: %v", err)
	}
	objs, err := newObjects(w, d.Name, objCfg, hc)
	if err != nil {
		return fmt.Errorf("watching the destination: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wt := &watch{key: key, cancel: cancel, client: direct, objects: objs, nudge: make(chan struct{}, 1), nudgeResources: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.byDest == nil {
		w.byDest = map[string]*watch{}
	}
	w.byDest[d.Name] = wt
	w.mu.Unlock()

	dest, kind := d.Name, sourceKind(d)
	refresh := func() { w.refresh(ctx, wt, dest, c, kind, ns, name) }
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { refresh() },
		UpdateFunc: func(any, any) { refresh() },
		DeleteFunc: func(any) { refresh() },
	}
	for _, obj := range []client.Object{newSource(kind), &kustomizev1.Kustomization{}} {
		inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			cancel()
			return fmt.Errorf("watching the destination: %v", err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			cancel()
			return fmt.Errorf("watching the destination: %v", err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	go func() { _ = objs.cache.Start(ctx) }()
	go func() {
		sctx, done := context.WithTimeout(ctx, syncTimeout)
		defer done()
		if !c.WaitForCacheSync(sctx) && ctx.Err() == nil {
			w.set(dest, State{Configured: true, Err: fmt.Sprintf("the destination's API server %s did not list %ss and Kustomizations in %s within %s", cfg.Host, kind, ns, syncTimeout)})
			return
		}
		refresh()
	}()
	src := newSource(kind)
	src.SetNamespace(ns)
	src.SetName(name)
	go w.nudger(ctx, wt.client, wt.nudge, src)
	go w.nudger(ctx, wt.client, wt.nudgeResources, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-resources"}})
	return nil
}

// refresh reads the destination's Flux objects from the watch's cache.
func (w *Watchers) refresh(ctx context.Context, wt *watch, dest string, c cache.Cache, kind, ns, name string) {
	if ctx.Err() != nil {
		return
	}
	s := State{Configured: true, Synced: true, SourceKind: kind}
	src := newSource(kind)
	s.Source = read(ctx, c, types.NamespacedName{Namespace: ns, Name: name}, src, func() (string, []metav1.Condition) {
		if src.GetArtifact() == nil {
			return "", src.GetConditions()
		}
		return src.GetArtifact().Revision, src.GetConditions()
	})
	for _, k := range []struct {
		suffix string
		out    *Object
	}{{"-dependencies", &s.Dependencies}, {"-resources", &s.Resources}} {
		var ks kustomizev1.Kustomization
		*k.out = read(ctx, c, types.NamespacedName{Namespace: ns, Name: name + k.suffix}, &ks, func() (string, []metav1.Condition) {
			return ks.Status.LastAppliedRevision, ks.Status.Conditions
		})
	}
	s.Neighbours = neighbours(ctx, c, ns, name)
	w.set(dest, s)
	w.retryResources(wt, s)
}

// neighbours lists the dependencies Kustomizations of other destinations
// in namespace ns (named like name's: switchyard-<destination>-dependencies).
func neighbours(ctx context.Context, c client.Reader, ns, name string) string {
	var list kustomizev1.KustomizationList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return ""
	}
	var out []string
	for _, k := range list.Items {
		if k.Name != name+"-dependencies" && strings.HasPrefix(k.Name, "switchyard-") && strings.HasSuffix(k.Name, "-dependencies") {
			out = append(out, k.Name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// retryResources nudges the resources Kustomization once per revision when
// it waits for a dependencies Kustomization that has just applied that
// revision. Without it, Flux retries only after --requeue-dependency
// (30 s by default), which would dominate the apply time of every change.
func (w *Watchers) retryResources(wt *watch, s State) {
	rev := s.Source.Revision
	if rev == "" || s.Dependencies.Revision != rev || s.Dependencies.Ready != metav1.ConditionTrue ||
		s.Resources.Revision == rev || s.Resources.Reason != meta.DependencyNotReadyReason {
		return
	}
	w.mu.Lock()
	again := wt.resourcesNudged != rev
	wt.resourcesNudged = rev
	w.mu.Unlock()
	if again {
		select {
		case wt.nudgeResources <- struct{}{}:
		default:
		}
	}
}

func read(ctx context.Context, c client.Reader, key types.NamespacedName, obj client.Object, status func() (string, []metav1.Condition)) Object {
	o := Object{Name: key.String()}
	if err := c.Get(ctx, key, obj); err != nil {
		return o
	}
	rev, conds := status()
	o.Found, o.Revision, o.Ready = true, rev, metav1.ConditionUnknown
	if cond := apimeta.FindStatusCondition(conds, meta.ReadyCondition); cond != nil {
		o.Ready, o.Reason, o.Message = cond.Status, cond.Reason, cond.Message
	}
	return o
}

// set records a state and wakes the destination when it changed.
func (w *Watchers) set(dest string, s State) {
	w.mu.Lock()
	if w.states == nil {
		w.states = map[string]State{}
	}
	old, ok := w.states[dest]
	w.states[dest] = s
	w.mu.Unlock()
	if (!ok || old != s) && w.Wake != nil {
		w.Wake(dest)
	}
}

// nudger annotates obj with reconcile.fluxcd.io/requestedAt for each
// nudge, one at a time, so Flux reconciles it now.
func (w *Watchers) nudger(ctx context.Context, c client.Client, nudges <-chan struct{}, obj client.Object) {
	log := ctrl.Log.WithName("feedback").WithValues("object", client.ObjectKeyFromObject(obj).String())
	for {
		select {
		case <-ctx.Done():
			return
		case <-nudges:
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
		pctx, done := context.WithTimeout(ctx, 10*time.Second)
		err := c.Patch(pctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)))
		done()
		if err != nil {
			log.V(1).Info("Nudging Flux failed; it reconciles within its interval", "error", err.Error())
		}
	}
}

// source is a Flux source: a GitRepository or a Bucket.
type source interface {
	client.Object
	GetArtifact() *meta.Artifact
	GetConditions() []metav1.Condition
}

// sourceKind is the kind of Flux source that reads d's store.
func sourceKind(d *v1alpha1.Destination) string {
	if d.Spec.StateStoreRef.EffectiveKind() == v1alpha1.BucketStateStoreKind {
		return sourcev1.BucketKind
	}
	return sourcev1.GitRepositoryKind
}

func newSource(kind string) source {
	if kind == sourcev1.BucketKind {
		return &sourcev1.Bucket{}
	}
	return &sourcev1.GitRepository{}
}
