package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/pflag"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestManagerOptions checks that a leader steps down when it stops, and
// only when leader election is on.
func TestManagerOptions(t *testing.T) {
	for _, args := range [][]string{{"--leader-elect"}, {}} {
		o, err := parseRun(args)
		if err != nil {
			t.Fatal(err)
		}
		if got := managerOptions(o).LeaderElectionReleaseOnCancel; got != o.leaderElect {
			t.Errorf("%v: LeaderElectionReleaseOnCancel %v", args, got)
		}
	}
}

var ranRouter bool

// TestServeGitReadyOnlyWhenLeading runs the router as the kind demo does
// (--leader-elect, --serve-git) against a real API server, with the lease
// held by another replica: /healthz passes and /readyz does not until the
// lease is free and this replica takes it. When it stops, it releases the
// lease at once, so the next replica need not wait out the lease.
func TestServeGitReadyOnlyWhenLeading(t *testing.T) {
	if ranRouter {
		t.Skip("run registers its controllers' names once per process (go test -count > 1)")
	}
	ranRouter = true
	cp, k8s := testenv.StartTestControlPlane(t)
	kc, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "switchyard-system"
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	holder, hour := "another-replica", int32(3600)
	held := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "switchyard-router"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &hour,
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	if err := k8s.Create(ctx, held); err != nil {
		t.Fatal(err)
	}

	probe := freeAddr(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		var stderr bytes.Buffer
		code := execute(runCtx, []string{"run", "--kubeconfig", kubeconfig, "--leader-elect", "--leader-election-namespace", ns,
			"--health-probe-bind-address", probe, "--metrics-bind-address", "0",
			"--serve-git", freeAddr(t), "--data-dir", t.TempDir()}, io.Discard, &stderr)
		if code != 0 {
			done <- fmt.Errorf("exit %d: %s", code, stderr.String())
			return
		}
		done <- nil
	}()
	defer func() {
		stop()
		<-done
	}()
	status := func(path string) int {
		resp, err := http.Get("http://" + probe + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.WaitFor(t, 30*time.Second, "/healthz", func() (bool, string) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("run ended: %v", err)
		default:
		}
		s := status("/healthz")
		return s == http.StatusOK, fmt.Sprint("status ", s)
	})
	if s := status("/readyz"); s == http.StatusOK {
		t.Fatal("/readyz passes while another replica holds the lease")
	}

	if err := k8s.Delete(ctx, held); err != nil { // the other replica is gone
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "/readyz once leading", func() (bool, string) {
		s := status("/readyz")
		return s == http.StatusOK, fmt.Sprint("status ", s)
	})

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return 30s after its context ended")
	}
	done <- nil // for the deferred wait
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(held), lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("the stopped router still holds the lease (holder %q): the next replica waits it out", *h)
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// parseRun parses run's flags alone, with the --kubeconfig the root
// command adds.
func parseRun(args []string) (*runOptions, error) {
	o := &runOptions{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the platform cluster")
	addRunFlags(fs, o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}
