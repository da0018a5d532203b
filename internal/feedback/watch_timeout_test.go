package feedback_test

import (
	"bufio"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// A destination's watches must outlive the timeout of its requests: with
// the timeout on the whole client (rest.Config.Timeout), client-go cut
// every watch after it and the informers watched again, every 30 s per
// kind and destination (issue 13, defect 9). The API server counts each
// finished watch in apiserver_request_total; with the timeout shortened
// to one second, no watch of the router's may finish in four.
func TestWatchesOutliveRequestTimeout(t *testing.T) {
	defer feedback.SetRequestTimeout(time.Second)()
	fluxDir, err := testenv.FluxDir()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := testenv.StartControlPlane(filepath.Join(fluxDir, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kc"}, Data: map[string][]byte{feedback.KubeConfigKey: kubeconfig}}
	w := &feedback.Watchers{SecretReader: fake.NewClientBuilder().WithScheme(s).WithObjects(secret).Build()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Start(ctx) }()
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "d"}}
	d.Spec.KubeConfigSecretRef = &v1alpha1.SecretReference{Namespace: "ns", Name: "kc"}
	if err := w.Ensure(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the watch to sync", func() (bool, string) {
		st := w.State("d")
		return st.Synced, st.Err
	})
	admin, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	before := finishedWatches(t, admin)
	// Waiting is the point: a cut watch shows only after the timeout.
	time.Sleep(4 * time.Second)
	if after := finishedWatches(t, admin); after != before {
		t.Errorf("%d watches of Flux objects ended within 4 s of a 1 s request timeout (%d before, %d after): the timeout cuts watches", after-before, before, after)
	}
	if st := w.State("d"); st.Err != "" {
		t.Errorf("state error %q", st.Err)
	}
}

// finishedWatches is the API server's count of finished watches of Flux
// objects (only the router's watcher watches them here).
func finishedWatches(t *testing.T, c kubernetes.Interface) int {
	t.Helper()
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `verb="WATCH"`) ||
			!(strings.Contains(line, `resource="kustomizations"`) || strings.Contains(line, `resource="gitrepositories"`)) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		n += int(v)
	}
	return n
}
