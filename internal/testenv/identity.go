package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
)

// RouterUser is the user name of the router's ServiceAccount in namespace.
func RouterUser(namespace string) string {
	return "system:serviceaccount:" + namespace + ":" + controller.RouterServiceAccount
}

// AsRouter applies the RBAC that config/rbac ships, moved into namespace
// (as `kustomize edit set namespace` would), and returns a config that
// impersonates the router's ServiceAccount: a router started with it has
// exactly the shipped rights, so a missing rule fails a test. admin must be
// allowed to impersonate (the envtest admin is).
func AsRouter(ctx context.Context, admin client.Client, cfg *rest.Config, namespace string) (*rest.Config, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := admin.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(RepoRoot(), "config", "rbac", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		objs, err := ReadObjects(f)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetKind() == "Kustomization" {
				continue
			}
			moveTo(o, namespace)
			if err := ensure(ctx, admin, o); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
			}
		}
	}
	as := rest.CopyConfig(cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: RouterUser(namespace),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}}
	return as, nil
}

// moveTo puts a namespaced object and the ServiceAccounts a binding names
// into namespace.
func moveTo(o *unstructured.Unstructured, namespace string) {
	if o.GetNamespace() != "" {
		o.SetNamespace(namespace)
	}
	subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" {
			m["namespace"] = namespace
		}
	}
	if subjects != nil {
		_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
	}
}

// GrantPromise does what a platform admin does with `router rbac`: it lets
// the router's ServiceAccount in namespace serve p's request kind.
func GrantPromise(ctx context.Context, admin client.Client, p *v1alpha1.Promise, namespace string) error {
	role, binding, err := controller.RequestRBAC(p, namespace)
	if err != nil {
		return err
	}
	for _, o := range []client.Object{role, binding} {
		if err := admin.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// GrantAdmissionPolicy applies the opt-in RBAC of
// config/rbac/admission-policy, moved into namespace, as an admin opting in
// to the finalizer at admission does. revoke deletes it again.
func GrantAdmissionPolicy(ctx context.Context, admin client.Client, namespace string) (revoke func(context.Context) error, err error) {
	objs, err := ReadObjects(filepath.Join(RepoRoot(), "config", "rbac", "admission-policy", "role.yaml"))
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		moveTo(o, namespace)
		if err := ensure(ctx, admin, o); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) error {
		for _, o := range objs {
			if err := admin.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("revoking %s %s: %w", o.GetKind(), o.GetName(), err)
			}
		}
		return nil
	}, nil
}

// Can asks the API server (SubjectAccessReview) whether user may do verb
// on resource (in group) in namespace.
func Can(t testing.TB, admin client.Client, user, verb, group, resource, namespace string) bool {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: resource}}}
	if err := admin.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Allowed
}
