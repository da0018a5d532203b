package destinations

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// GitStateStoreReconciler opens a writer per GitStateStore and checks the
// repository.
type GitStateStoreReconciler struct {
	client.Client
	// SecretReader reads Secrets by name without a cache, so the router
	// never lists or watches Secrets.
	SecretReader client.Reader
	Stores       *Stores
	// Index is woken for the store's destinations when the repository
	// changed under the router (drift) or a rewrite is asked for.
	Index *placement.Index
	// Interval between checks of a Ready store.
	Interval time.Duration

	// rewrites holds the last RewriteAnnotation value seen per store.
	rewrites sync.Map
}

// +kubebuilder:rbac:groups=switchyard.dev,resources=gitstatestores,verbs=get;list;watch
// +kubebuilder:rbac:groups=switchyard.dev,resources=gitstatestores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// SetupWithManager registers the reconciler.
func (r *GitStateStoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Interval == 0 {
		r.Interval = time.Minute
	}
	return ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.GitStateStore{}).Named("gitstatestore").Complete(r)
}

// Reconcile checks one store.
func (r *GitStateStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var st v1alpha1.GitStateStore
	if err := r.Get(ctx, req.NamespacedName, &st); err != nil {
		if apierrors.IsNotFound(err) {
			r.Stores.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := st.DeepCopy()
	cond := r.check(ctx, &st)
	cond.Type, cond.ObservedGeneration = v1alpha1.ReadyCondition, st.Generation
	meta.SetStatusCondition(&st.Status.Conditions, cond)
	st.Status.ObservedGeneration = st.Generation
	r.Stores.setReady(st.Name, cond.Status == metav1.ConditionTrue, cond.Message)
	if !equality.Semantic.DeepEqual(orig.Status, st.Status) {
		if err := r.Status().Patch(ctx, &st, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, err
		}
	}
	if cond.Status != metav1.ConditionTrue {
		log.FromContext(ctx).Info("State store not ready", "reason", cond.Reason, "message", cond.Message)
		return ctrl.Result{RequeueAfter: r.Interval / 6}, nil
	}
	return ctrl.Result{RequeueAfter: r.Interval}, nil
}

// check opens the writer and fetches; the returned condition has Status,
// Reason and Message set.
func (r *GitStateStoreReconciler) check(ctx context.Context, st *v1alpha1.GitStateStore) metav1.Condition {
	cfg, key, cond := storeConfig(ctx, r.SecretReader, st, r.Stores.dir)
	if cond != nil {
		return *cond
	}
	w, err := r.Stores.open(st.Name, key, cfg)
	if err != nil {
		return notReady(v1alpha1.RepositoryUnreachable, err.Error())
	}
	head, moved, err := w.Refresh(ctx)
	if err != nil {
		return notReady(v1alpha1.RepositoryUnreachable, err.Error())
	}
	rewrite := st.Annotations[v1alpha1.RewriteAnnotation]
	last, seen := r.rewrites.Swap(st.Name, rewrite)
	if moved || (seen && last != rewrite) {
		// Someone else changed the branch, or a rewrite was asked for:
		// every request and canary of the store is checked against the
		// new head, and whatever differs is written back.
		r.wakeDestinations(ctx, st.Name)
	}
	st.Status.Revision = head
	msg := fmt.Sprintf("fetched %s at %s", cfg.Branch, head)
	if head == "" {
		msg = fmt.Sprintf("repository reachable; branch %s will be created on the first write", cfg.Branch)
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.Reconciled, Message: msg}
}

// OpenStore opens a writer on st's repository with the credentials its
// Secret holds, keeping the clone in dir, and fetches. It is for the
// inspection commands; the router keeps its writers in Stores.
func OpenStore(ctx context.Context, secrets client.Reader, st *v1alpha1.GitStateStore, dir string) (statestore.Writer, error) {
	cfg, _, cond := storeConfig(ctx, secrets, st, dir)
	if cond != nil {
		return nil, fmt.Errorf("%s: %s", cond.Reason, cond.Message)
	}
	cfg.Dir = filepath.Join(dir, "clone")
	w, err := gitstate.Open(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := w.Fetch(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// storeConfig builds the writer configuration and a key that changes
// whenever it or the credentials change. SSH known_hosts go under dir.
func storeConfig(ctx context.Context, secrets client.Reader, st *v1alpha1.GitStateStore, dir string) (gitstate.Config, string, *metav1.Condition) {
	cfg := gitstate.Config{
		URL: st.Spec.URL, Branch: st.Spec.Branch, Root: st.Spec.Path,
		AuthorName: st.Spec.Author.Name, AuthorEmail: st.Spec.Author.Email,
	}
	if cfg.AuthorName == "" {
		cfg.AuthorName = "switchyard"
	}
	if cfg.AuthorEmail == "" {
		cfg.AuthorEmail = "switchyard@switchyard.dev"
	}
	parts := []string{cfg.URL, cfg.Branch, cfg.Root, cfg.AuthorName, cfg.AuthorEmail, st.Spec.AuthMethod}
	ref := st.Spec.SecretRef
	if ref == nil {
		return cfg, hash(parts...), nil
	}
	var secret corev1.Secret
	if err := secrets.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &secret); err != nil {
		c := notReady(v1alpha1.SecretNotFound, fmt.Sprintf("Secret %s/%s not found", ref.Namespace, ref.Name))
		if !apierrors.IsNotFound(err) {
			c.Message = fmt.Sprintf("reading Secret %s/%s: %v", ref.Namespace, ref.Name, err)
		}
		return cfg, "", &c
	}
	need := []string{"username", "password"}
	if st.Spec.AuthMethod == v1alpha1.SSHAuthMethod {
		need = []string{"sshPrivateKey", "knownHosts"}
	}
	for _, k := range need {
		if len(secret.Data[k]) == 0 {
			c := notReady(v1alpha1.InvalidSecret, fmt.Sprintf("Secret %s/%s has no %q for authMethod %s", ref.Namespace, ref.Name, k, st.Spec.AuthMethod))
			return cfg, "", &c
		}
		parts = append(parts, string(secret.Data[k]))
	}
	if st.Spec.AuthMethod == v1alpha1.SSHAuthMethod {
		auth, err := gitstate.SSHAuth(cfg.URL, secret.Data["sshPrivateKey"], secret.Data["knownHosts"], filepath.Join(dir, "ssh-"+st.Name))
		if err != nil {
			c := notReady(v1alpha1.InvalidSecret, fmt.Sprintf("Secret %s/%s: %v", ref.Namespace, ref.Name, err))
			return cfg, "", &c
		}
		cfg.Auth = auth
	} else {
		cfg.Auth = gitstate.BasicAuth(string(secret.Data["username"]), string(secret.Data["password"]))
	}
	return cfg, hash(parts...), nil
}

// wakeDestinations wakes every destination of store, and so their requests
// and the Promises that send them dependencies. It reads the cache, which
// fails only before it has synced; the next change wakes them then.
func (r *GitStateStoreReconciler) wakeDestinations(ctx context.Context, store string) {
	var list v1alpha1.DestinationList
	if err := r.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "Listing destinations to wake them")
		return
	}
	for _, d := range list.Items {
		if d.Spec.StateStoreRef.Name == store {
			r.Index.Wake(d.Name)
		}
	}
}

func notReady(reason, message string) metav1.Condition {
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: message}
}
