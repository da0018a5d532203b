package feedback_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

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
	// A cleanup, not a defer: it must run after the watchers stop.
	t.Cleanup(feedback.SetRequestTimeout(time.Second))
	cp := startDestination(t)
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	w, ctx := startWatchers(t, kubeconfig)
	ensureD(t, ctx, w)
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
