package feedback

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
	unsafe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "token-file"}, Data: map[string][]byte{KubeConfigKey: []byte(`
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)}}
	wakes := map[string]int{}
	w := &Watchers{SecretReader: fake.NewClientBuilder().WithScheme(s).WithObjects(noKey, unsafe).Build(), Wake: func(d string) { wakes[d]++ }}
	tests := []struct {
		name    string
		ref     *v1alpha1.SecretReference
		refused bool
	}{
		{"no-kubeconfig", nil, false},
		{"secret-missing", &v1alpha1.SecretReference{Namespace: "ns", Name: "absent"}, false},
		{"key-missing", &v1alpha1.SecretReference{Namespace: "ns", Name: "no-key"}, false},
		{"refused", &v1alpha1.SecretReference{Namespace: "ns", Name: "token-file"}, true},
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
		if st := w.State(tt.name); st.Refused != tt.refused {
			t.Errorf("%s: Refused is %t (%q), want %t", tt.name, st.Refused, st.Err, tt.refused)
		}
	}
	if st := w.State("refused"); !strings.Contains(st.Err, "tokenFile") || strings.Contains(st.Err, "/var/run/secrets") {
		t.Errorf("the refusal should name tokenFile and not its value: %q", st.Err)
	}
	if len(w.byDest) != 0 {
		t.Errorf("watches were started: %v", w.byDest)
	}
}

// A request found gone is untracked by its key, its UID unknown then, so
// the map does not grow with requests deleted without the finalizer; its
// objects' events wake nothing, others' still do.
func TestUntrackKey(t *testing.T) {
	w := &Watchers{}
	gk := schema.GroupKind{Group: "g", Kind: "K"}
	events := w.ObjectEvents(gk)
	gone, kept := types.NamespacedName{Namespace: "n", Name: "gone"}, types.NamespacedName{Namespace: "n", Name: "kept"}
	w.Track("uid-gone", gk, gone)
	w.Track("uid-kept", gk, kept)
	w.UntrackKey(gk, gone)
	w.wakeRequest("uid-gone")
	w.wakeRequest("uid-kept")
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	if e := <-events; e.Object.GetName() != "kept" {
		t.Errorf("woke %s", e.Object.GetName())
	}
	if len(w.tracked) != 1 {
		t.Errorf("tracked %v", w.tracked)
	}
}
