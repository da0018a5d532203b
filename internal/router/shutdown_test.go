package router_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestShutdownIsQuiet stops the router while destinations wait on a Git
// push the server holds: a cancelled context at shutdown is how a
// reconcile ends then, not an error, so the log must hold no
// "Reconciler error" (each came with a stack trace).
func TestShutdownIsQuiet(t *testing.T) {
	const suite = "quiet"
	g, _ := scenario(t, suite)
	stop := lastStop

	// New destinations write their canaries: the push waits on the server.
	g.Proxy.Hold()
	t.Cleanup(g.Proxy.Release)
	for i := range 4 {
		d := &v1alpha1.Destination{}
		d.Name = fmt.Sprintf("%s-%d", suite, i)
		d.Labels = labels(suite)
		d.Spec.StateStoreRef = v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: suite}
		if err := k8s.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		track(d)
	}
	testenv.WaitFor(t, 30*time.Second, "the canaries' push held by the Git server", func() (bool, string) {
		return g.Proxy.Held() > 0, fmt.Sprintf("%d sends held", g.Proxy.Held())
	})

	mark := len(routerLog.String())
	stop()
	shutdown := routerLog.String()[mark:]
	g.Proxy.Release()
	if strings.Contains(shutdown, "Reconciler error") {
		t.Errorf("stopping the router logged reconciler errors:\n%s", shutdown)
	}
	// Another router finishes what the test made (finalizers).
	startRouter(t)
}
