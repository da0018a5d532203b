package destinations

import (
	"context"
	"fmt"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// GitStateStoreReconciler opens a writer per GitStateStore and checks the
// repository.
type GitStateStoreReconciler struct {
	*StoreReconciler
	written ownstatus.Pending
}

// +kubebuilder:rbac:groups=switchyard.dev,resources=gitstatestores,verbs=get;list;watch
// +kubebuilder:rbac:groups=switchyard.dev,resources=gitstatestores/status,verbs=get;update;patch
// Secrets only in the router's namespace (see package secretref).
// +kubebuilder:rbac:groups="",namespace=switchyard-system,resources=secrets,verbs=get

// SetupWithManager registers the reconciler.
func (r *GitStateStoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.GitStateStore{}, builder.WithPredicates(ownstatus.Changed)).Named("gitstatestore").Complete(shutdown.Quiet(r))
}

// Reconcile checks one store.
func (r *GitStateStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ref := v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: req.Name}
	var st v1alpha1.GitStateStore
	return r.reconcile(ctx, ref, &st, &st.Status, &r.written, func() metav1.Condition { return r.check(ctx, ref, &st) })
}

// check opens the writer and fetches; the returned condition has Status,
// Reason and Message set.
func (r *GitStateStoreReconciler) check(ctx context.Context, ref v1alpha1.StateStoreReference, st *v1alpha1.GitStateStore) metav1.Condition {
	cfg, key, cond := gitConfig(ctx, r.SecretReader, st, r.Stores.dir)
	if cond != nil {
		return *cond
	}
	w, err := r.Stores.open(ref, key, func() (statestore.Writer, error) {
		// A new URL or branch gets a new clone directory; new credentials keep it.
		cfg.Dir = filepath.Join(r.Stores.dir, st.Name+"-"+hash(cfg.URL, cfg.Branch)[:12])
		cfg.Name, cfg.MaxBatch = st.Name, r.Stores.MaxBatch
		return gitstate.Open(cfg)
	})
	if err != nil {
		return notReady(v1alpha1.RepositoryUnreachable, err.Error())
	}
	head, err := r.refresh(ctx, ref, st, w)
	if err != nil {
		return notReady(v1alpha1.RepositoryUnreachable, err.Error())
	}
	st.Status.Revision = head
	msg := fmt.Sprintf("fetched %s at %s", cfg.Branch, head)
	if head == "" {
		msg = fmt.Sprintf("repository reachable; branch %s will be created on the first write", cfg.Branch)
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.Reconciled, Message: msg}
}

// gitConfig builds the writer configuration and a key that changes
// whenever it or the credentials change. SSH known_hosts go under dir.
func gitConfig(ctx context.Context, secrets client.Reader, st *v1alpha1.GitStateStore, dir string) (gitstate.Config, string, *metav1.Condition) {
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
	need := []string{"username", "password"}
	if st.Spec.AuthMethod == v1alpha1.SSHAuthMethod {
		need = []string{"sshPrivateKey", "knownHosts"}
	}
	data, cond := readSecret(ctx, secrets, ref, st.Spec.AuthMethod, need...)
	if cond != nil {
		return cfg, "", cond
	}
	for _, k := range need {
		parts = append(parts, string(data[k]))
	}
	if st.Spec.AuthMethod == v1alpha1.SSHAuthMethod {
		auth, err := gitstate.SSHAuth(cfg.URL, data["sshPrivateKey"], data["knownHosts"], filepath.Join(dir, "ssh-"+st.Name))
		if err != nil {
			c := notReady(v1alpha1.InvalidSecret, fmt.Sprintf("Secret %s/%s: %v", ref.Namespace, ref.Name, err))
			return cfg, "", &c
		}
		cfg.Auth = auth
	} else {
		cfg.Auth = gitstate.BasicAuth(string(data["username"]), string(data["password"]))
	}
	return cfg, hash(parts...), nil
}
