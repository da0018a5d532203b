package secretref

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrCrossNamespace is wrapped by the error of a refused read.
var ErrCrossNamespace = errors.New("cross-namespace Secret references are not allowed")

// Reader reads Secrets in Namespace only (any namespace when
// AllowCrossNamespace is set); other kinds pass through.
type Reader struct {
	client.Reader
	// Namespace is the router's own.
	Namespace           string
	AllowCrossNamespace bool
}

// Get refuses a Secret outside the allowed namespace before any request to
// the API server.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && !r.AllowCrossNamespace && key.Namespace != r.Namespace {
		return fmt.Errorf("secret %s is not in the router's namespace %s: %w (the router runs without --allow-cross-namespace-refs)", key, r.Namespace, ErrCrossNamespace)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// List lists no Secrets: the router reads them by name only.
func (r *Reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*corev1.SecretList); ok {
		return errors.New("the router does not list Secrets")
	}
	return r.Reader.List(ctx, list, opts...)
}
