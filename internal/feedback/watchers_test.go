package feedback

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Ensure wakes a destination only when what the router sees of it changes.
// The destination reconciler is itself woken, so waking on every Ensure
// would make it (and every request placed there) reconcile in a loop.
func TestEnsureWakesOnlyOnChange(t *testing.T) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	noKey := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "no-key"}}
	wakes := map[string]int{}
	w := &Watchers{SecretReader: fake.NewClientBuilder().WithScheme(s).WithObjects(noKey).Build(), Wake: func(d string) { wakes[d]++ }}
	tests := []struct {
		name string
		ref  *v1alpha1.SecretReference
	}{
		{"no-kubeconfig", nil},
		{"secret-missing", &v1alpha1.SecretReference{Namespace: "ns", Name: "absent"}},
		{"key-missing", &v1alpha1.SecretReference{Namespace: "ns", Name: "no-key"}},
	}
	for _, tt := range tests {
		d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: tt.name}}
		d.Spec.KubeConfigSecretRef = tt.ref
		for range 3 {
			if err := w.Ensure(context.Background(), d); err != nil {
				t.Fatal(err)
			}
		}
		if wakes[tt.name] != 1 {
			t.Errorf("%s: %d wakes for three Ensures of an unchanged destination, want 1", tt.name, wakes[tt.name])
		}
	}
}
