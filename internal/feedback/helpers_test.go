package feedback_test

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// startDestination starts an API server serving Flux's CRDs, as a
// destination cluster does.
func startDestination(t *testing.T) *testenv.ControlPlane {
	t.Helper()
	fluxDir, err := testenv.FluxDir()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := testenv.StartControlPlane(filepath.Join(fluxDir, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// withObjsNamespace returns an admin client of cp, whose namespace objs
// it creates for the test's objects.
func withObjsNamespace(t *testing.T, cp *testenv.ControlPlane) kubernetes.Interface {
	t.Helper()
	admin, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "objs"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return admin
}

// startWatchers starts Watchers that find kubeconfig in Secret ns/kc, as
// destination "d" names it; they stop when the test ends. The caller adds
// the destination with ensureD, after registering what it must first.
func startWatchers(t *testing.T, kubeconfig []byte) (*feedback.Watchers, context.Context) {
	t.Helper()
	s := k8sruntime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kc"}, Data: map[string][]byte{feedback.KubeConfigKey: kubeconfig}}
	w := &feedback.Watchers{SecretReader: fake.NewClientBuilder().WithScheme(s).WithObjects(secret).Build()}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = w.Start(ctx) }()
	return w, ctx
}

// ensureD adds destination "d", whose kubeconfig is Secret ns/kc.
func ensureD(t *testing.T, ctx context.Context, w *feedback.Watchers) {
	t.Helper()
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "d"}}
	d.Spec.KubeConfigSecretRef = &v1alpha1.SecretReference{Namespace: "ns", Name: "kc"}
	if err := w.Ensure(ctx, d); err != nil {
		t.Fatal(err)
	}
}
