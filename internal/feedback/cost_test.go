package feedback_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/readiness"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestObjectWatchCost measures what watching requests' objects on a
// destination costs the router at 1,000 requests, each with one object of
// about 1.5 KiB (an ACK Table's size): heap, and requests to the
// destination's API server. SWITCHYARD_MEASURE=1 runs it.
func TestObjectWatchCost(t *testing.T) {
	if os.Getenv("SWITCHYARD_MEASURE") == "" {
		t.Skip("a measurement; SWITCHYARD_MEASURE=1 runs it")
	}
	const n = 1000
	cp := startDestination(t)
	admin := withObjsNamespace(t, cp)
	ctx := context.Background()
	data := strings.Repeat("x", 1500)
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "objs", Name: fmt.Sprintf("r%d", i),
			Labels: map[string]string{v1alpha1.RequestUIDLabel: fmt.Sprintf("uid-%d", i)}}, Data: map[string]string{"d": data}}
		if _, err := admin.CoreV1().ConfigMaps("objs").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	w, _ := startWatchers(t, kubeconfig)
	ensureD(t, ctx, w)
	testenv.WaitFor(t, 30*time.Second, "the Flux watch to sync", func() (bool, string) { return w.State("d").Synced, w.State("d").Err })
	before := heap()
	calls := apiCalls(t, admin)
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	read := func(i int) (string, bool) {
		objs := []readiness.Object{{Template: "cm", GVK: gvk, Namespace: "objs", Name: fmt.Sprintf("r%d", i)}}
		why, _ := w.ReadObjects(ctx, "d", fmt.Sprintf("uid-%d", i), objs)
		return why, objs[0].Live != nil
	}
	testenv.WaitFor(t, 30*time.Second, "the ConfigMap watch to list", func() (bool, string) {
		why, ok := read(0)
		return ok, why
	})
	start := time.Now()
	for i := range n {
		if why, ok := read(i); !ok {
			t.Fatalf("request %d: %s", i, why)
		}
	}
	perRead := time.Since(start) / n
	after := heap()
	got := apiCalls(t, admin)
	t.Logf("%d requests' objects watched on one destination: heap +%.1f MiB (%.1f KiB per request), %s per read of a request's objects; API calls for it: %s",
		n, float64(after-before)/(1<<20), float64(after-before)/1024/n, perRead, diff(calls, got))
	runtime.KeepAlive(w)
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// apiCalls counts the API server's requests on ConfigMaps by verb: those
// finished, and those open ("open WATCH").
func apiCalls(t *testing.T, c kubernetes.Interface) map[string]int {
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		open := strings.HasPrefix(line, "apiserver_longrunning_requests{")
		if !(open || strings.HasPrefix(line, "apiserver_request_total{")) || !strings.Contains(line, `resource="configmaps"`) {
			continue
		}
		verb := line[strings.Index(line, `verb="`)+6:]
		verb = verb[:strings.Index(verb, `"`)]
		if open {
			verb = "open " + verb
		}
		var v float64
		fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
		out[verb] += int(v)
	}
	return out
}

func diff(before, after map[string]int) string {
	var parts []string
	for verb, n := range after {
		if d := n - before[verb]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", verb, d))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
