package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

var requestGVR = schema.GroupVersionResource{Group: "aws.switchyard.dev", Version: "v1alpha1", Resource: "dynamodbrequests"}

const namespaces = 10

// logLevel of the router under benchmark; BENCH_LOG_LEVEL=info shows its work.
var logLevel = envOr("BENCH_LOG_LEVEL", "error")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type env struct {
	o       options
	cp      *testenv.ControlPlane
	cfg     *rest.Config
	k8s     client.Client
	dyn     dynamic.Interface
	git     *testenv.GitServer
	repoURL string
	s3      *testenv.S3Server
	tmp     string
	router  *routerProcess
	dest    *testenv.ControlPlane // -mode feedback: the destinations' API server
	destK8s client.Client
}

func run(o options) (*result, error) {
	e := &env{o: o}
	defer e.close()
	// Interrupted (Ctrl-C, a timeout), still stop the servers it started.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		step("interrupted: cleaning up")
		e.close()
		os.Exit(1)
	}()
	var err error
	if e.tmp, err = os.MkdirTemp("", "switchyard-bench-"); err != nil {
		return nil, err
	}
	step("starting the control plane")
	if e.cp, err = testenv.StartControlPlane(); err != nil {
		return nil, err
	}
	e.cfg = rest.CopyConfig(e.cp.Config)
	e.cfg.QPS, e.cfg.Burst = 5000, 10000
	if e.k8s, err = client.New(e.cfg, client.Options{Scheme: router.Scheme()}); err != nil {
		return nil, err
	}
	if e.dyn, err = dynamic.NewForConfig(e.cfg); err != nil {
		return nil, err
	}
	res := &result{Mode: o.mode, Store: o.store, Requests: o.requests, Destinations: o.destinations, Workers: o.workers, Clients: o.clients, RouterGOMEMLIMIT: o.memLimit}
	step("measuring the API server reference rate (%d creates + status patches, %d clients)", o.requests, o.clients)
	if res.ReferenceRate, err = e.reference(); err != nil {
		return nil, err
	}
	step("starting the %s server and building the router", o.store)
	if o.store == "bucket" {
		if e.s3, err = testenv.NewS3Server(benchBucket); err != nil {
			return nil, err
		}
	} else {
		if e.git, err = testenv.NewGitServer(); err != nil {
			return nil, err
		}
		if e.repoURL, err = e.git.CreateRepo("bench"); err != nil {
			return nil, err
		}
	}
	if o.mode == "feedback" {
		step("starting the destination API server with Flux's CRDs")
		if err := e.startDestination(); err != nil {
			return nil, err
		}
	}
	bin := filepath.Join(e.tmp, "router")
	build := exec.Command("go", "build", "-o", bin, "./cmd/router")
	build.Dir, build.Stdout, build.Stderr = testenv.RepoRoot(), os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building the router: %w", err)
	}
	kubeconfig, err := e.cp.KubeConfig()
	if err != nil {
		return nil, err
	}
	kcFile := filepath.Join(e.tmp, "kubeconfig")
	if err := os.WriteFile(kcFile, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig", kcFile, "--request-workers", strconv.Itoa(o.workers), "--kube-api-qps", "5000", "--kube-api-burst", "10000", "--log-level", logLevel}
	if o.mode == "baseline" {
		// The Kratix design: one worker, one commit and one push per request.
		args = []string{"--kubeconfig", kcFile, "--request-workers", "1", "--max-batch", "1", "--kube-api-qps", "5000", "--kube-api-burst", "10000", "--log-level", logLevel}
		res.Workers = 1
	}
	if e.router, err = startRouter(bin, filepath.Join(e.tmp, "data-1"), o.memLimit, args); err != nil {
		return nil, err
	}
	step("creating the store, %d destinations and the DynamoDB Promise", o.destinations)
	if err := e.setup(); err != nil {
		return nil, err
	}
	if o.mode == "feedback" {
		if res.Feedback, err = e.watchDestinations(); err != nil {
			return nil, err
		}
	}
	if err := e.measure(res); err != nil {
		return nil, err
	}
	if o.mode == "feedback" {
		// The watched figures stand without this step: report, sample
		// what there is, and go on.
		if err := e.applyAll(); err != nil {
			step("requests not past Flux and their objects' watch: %v (Ready reasons: %v); sampling anyway", err, e.reasons())
		}
		res.Feedback.AfterRequests = e.router.sample()
		res.Feedback.PerDestinationAfterRequests = res.Feedback.AfterRequests.minus(res.Feedback.Before, o.destinations)
	}
	if o.mode == "burst" && o.restart {
		step("restarting the router with a fresh data directory")
		if res.Restart, err = e.restart(bin, args); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (e *env) close() {
	if e.router != nil {
		e.router.stop()
	}
	if e.git != nil {
		e.git.Close()
	}
	if e.s3 != nil {
		e.s3.Close()
	}
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	if e.dest != nil {
		_ = e.dest.Stop()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// parallel runs f(i) for i in [0, n) on c goroutines, or paced at rate per
// second when rate > 0, and returns the first error.
func parallel(n, c int, rate float64, f func(i int) error) error {
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}

// reference installs the DynamoDB request CRD exactly as the router would,
// but in a group of its own (referenceGroup) that the router does not
// serve, then creates o.requests requests and patches each one's status
// once, with no router running: the API server's own limit for this work.
// The objects stay: deleting 100,000 of them takes the API server longer
// than creating them, and nothing the router watches sees them.
func (e *env) reference() (float64, error) {
	ctx := context.Background()
	p, err := readPromise()
	if err != nil {
		return 0, err
	}
	crd, _, err := controller.RequestCRD(p)
	if err != nil {
		return 0, err
	}
	crd.Spec.Group = referenceGroup
	crd.Name = crd.Spec.Names.Plural + "." + referenceGroup
	if err := e.k8s.Create(ctx, crd); err != nil {
		return 0, err
	}
	ns := "bench-reference"
	if err := e.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	gvr := requestGVR
	gvr.Group = referenceGroup
	res := e.dyn.Resource(gvr).Namespace(ns)
	ref := func(name string, i int) *unstructured.Unstructured {
		u := request(name, i)
		u.SetAPIVersion(referenceGroup + "/" + gvr.Version)
		return u
	}
	// Wait until the new kind accepts creates (the API server delays the
	// first ones after a CRD is established).
	if err := poll(30*time.Second, func() (bool, error) {
		_, err := res.Create(ctx, ref("warmup", 0), metav1.CreateOptions{})
		return err == nil, nil
	}); err != nil {
		return 0, fmt.Errorf("the request CRD never served: %w", err)
	}
	status := []byte(`{"status":{"destination":"d","commit":"0123456789abcdef0123456789abcdef01234567","observedGeneration":1,` +
		`"conditions":[{"type":"Ready","status":"True","reason":"Committed","message":"m","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`)
	start := time.Now()
	err = parallel(e.o.requests, e.o.clients, 0, func(i int) error {
		name := fmt.Sprintf("ref-%d", i)
		if _, err := res.Create(ctx, ref(name, i), metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := res.Patch(ctx, name, types.MergePatchType, status, metav1.PatchOptions{}, "status")
		return err
	})
	if err != nil {
		return 0, err
	}
	return float64(e.o.requests) / time.Since(start).Seconds(), nil
}

// referenceGroup is the reference's copy of the request kind.
const referenceGroup = "reference.bench.switchyard.dev"

// request is the DynamoDBRequest the benchmark creates.
func request(name string, i int) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"tableName": fmt.Sprintf("table-%d", i), "hashKey": map[string]any{"name": "id", "type": "S"}}}}
	u.SetAPIVersion("aws.switchyard.dev/v1alpha1")
	u.SetKind("DynamoDBRequest")
	u.SetName(name)
	return u
}

func readPromise() (*v1alpha1.Promise, error) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config/promises/dynamodb/promise.yaml"))
	if err != nil {
		return nil, err
	}
	var p v1alpha1.Promise
	return &p, yaml.UnmarshalStrict(b, &p)
}

// benchBucket is the bucket of -store bucket.
const benchBucket = "bench"

func (e *env) setup() error {
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bench-git", Namespace: "default"},
		StringData: map[string]string{"username": testenv.GitUser, "password": testenv.GitPassword}}
	var store client.Object = &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: v1alpha1.GitStateStoreSpec{
		URL: e.repoURL, Path: "clusters", SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}
	ref := v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "bench"}
	if e.s3 != nil {
		secret.StringData = map[string]string{"accessKeyID": testenv.S3AccessKey, "secretAccessKey": testenv.S3SecretKey}
		store = &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: v1alpha1.BucketStateStoreSpec{
			Endpoint: e.s3.Endpoint, Insecure: true, BucketName: benchBucket, Path: "clusters",
			SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}
		ref.Kind = v1alpha1.BucketStateStoreKind
	}
	for _, o := range []client.Object{secret, store} {
		if err := e.k8s.Create(ctx, o); err != nil {
			return err
		}
	}
	for i := 0; i < e.o.destinations; i++ {
		d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("dest-%03d", i),
			Labels: map[string]string{"provider": "localstack", "zone": fmt.Sprintf("z%d", i%10)}},
			Spec: v1alpha1.DestinationSpec{StateStoreRef: ref}}
		if err := e.k8s.Create(ctx, d); err != nil {
			return err
		}
	}
	p, err := readPromise()
	if err != nil {
		return err
	}
	if err := e.k8s.Create(ctx, p); err != nil {
		return err
	}
	for i := 0; i < namespaces; i++ {
		if err := e.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}}); err != nil {
			return err
		}
	}
	return poll(2*time.Minute, func() (bool, error) {
		var dests v1alpha1.DestinationList
		if err := e.k8s.List(ctx, &dests); err != nil {
			return false, err
		}
		for _, d := range dests.Items {
			if !meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.ReadyCondition) {
				return false, nil
			}
		}
		var p v1alpha1.Promise
		if err := e.k8s.Get(ctx, types.NamespacedName{Name: "dynamodb"}, &p); err != nil {
			return false, err
		}
		// A platform installs a Promise before its requests come: wait
		// until its admission policy adds the finalizer, as it would then.
		if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ReadyCondition) || len(dests.Items) != e.o.destinations ||
			!meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.FinalizerAtAdmissionCondition) {
			return false, nil
		}
		// The router installs the request kind; the first calls after
		// that may still find it not served.
		_, err := e.dyn.Resource(requestGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// measure creates the requests and waits until each is Written.
func (e *env) measure(res *result) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := e.o.requests
	created := make([]time.Time, n)
	written := make([]time.Time, n)
	var mu sync.Mutex
	remaining := n
	var last time.Time // the latest Written
	done := make(chan struct{})
	seen := func(u *unstructured.Unstructured) {
		if !isWritten(u) {
			return
		}
		i, err := strconv.Atoi(strings.TrimPrefix(u.GetName(), "req-"))
		if err != nil || i >= n {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if written[i].IsZero() {
			written[i] = time.Now()
			last = written[i]
			remaining--
			if remaining == 0 {
				close(done)
			}
		}
	}
	go e.watchRequests(ctx, seen)
	if e.o.stallProfile != "" {
		go e.profileStall(ctx, func() (time.Time, bool) {
			mu.Lock()
			defer mu.Unlock()
			return last, remaining > 0 && remaining < n
		})
	}
	rate := 0.0
	if e.o.mode == "steady" {
		rate = e.o.rate
	}
	step("creating %d requests (rate %v/s, 0 = burst)", n, rate)
	apiBefore, err := apiRequests(ctx, e.cfg)
	if err != nil {
		return err
	}
	cpuBefore, writesBefore := e.router.cpuSeconds(), e.objectWrites()
	start := time.Now()
	go func() {
		err := parallel(n, e.o.clients, rate, func(i int) error {
			t := time.Now()
			_, err := e.dyn.Resource(requestGVR).Namespace(fmt.Sprintf("bench-%d", i%namespaces)).Create(ctx, request(fmt.Sprintf("req-%d", i), i), metav1.CreateOptions{})
			mu.Lock()
			created[i] = t
			mu.Unlock()
			return err
		})
		if err != nil {
			step("create failed: %v", err)
		}
	}()
	// At least 15 minutes, and 20 requests a second for larger runs
	// (100,000 requests: 83 minutes).
	timeout := time.Duration(envInt("BENCH_TIMEOUT_SECONDS", max(900, n/20))) * time.Second
	select {
	case <-done:
	case <-time.After(timeout):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%d of %d requests not Written after %s (Ready reasons: %v)", remaining, n, timeout, e.reasons())
	}
	mu.Lock()
	end := last
	lat := make([]float64, n)
	for i := range written {
		lat[i] = written[i].Sub(created[i]).Seconds() * 1000
	}
	mu.Unlock()
	if e.o.mode == "steady" {
		step("slowest 1%% by when they were created: %s", slowest(created, lat, start))
	}
	sort.Float64s(lat)
	res.ElapsedSeconds = end.Sub(start).Seconds()
	res.Rate = float64(n) / res.ElapsedSeconds
	res.FractionOfReference = res.Rate / res.ReferenceRate
	res.P50, res.P90, res.P99, res.Max = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), lat[n-1]
	res.RouterCPUSeconds = e.router.cpuSeconds() - cpuBefore
	res.RouterPeakRSSMiB = e.router.peakRSSMiB()
	res.RouterHeapInuseMiB = e.router.metric("go_memstats_heap_inuse_bytes") / (1 << 20)
	// The router may still be making its last status patches and Ready
	// checks; what it does after the last Written is its due too, so this
	// is read once its queue is empty.
	label := `{controller="request-DynamoDBRequest.aws.switchyard.dev"}`
	_ = poll(time.Minute, func() (bool, error) { return e.router.metric(`workqueue_depth`+label) == 0, nil })
	apiAfter, err := apiRequests(ctx, e.cfg)
	if err != nil {
		return err
	}
	res.APIPerRequest = perRequest(apiBefore, apiAfter, n)
	res.APIAnswerTimes = answerTimes(apiBefore, apiAfter, n)
	if e.o.heapProfile != "" {
		if err := e.router.saveProfile("heap?gc=1", e.o.heapProfile); err != nil {
			return err
		}
		step("heap profile of the router after %d requests: %s", n, e.o.heapProfile)
	}
	res.Commits = e.commits()
	res.PushRetries = e.router.metric("switchyard_push_retries_total")
	res.RepoFiles = e.files()
	if e.s3 != nil {
		res.ObjectWrites = e.objectWrites() - writesBefore
	} else {
		res.RepoSizeKiB = dirSizeKiB(e.git.RepoDir("bench"))
	}
	return nil
}

// watchRequests calls seen for every request state it observes. The API
// server drops watchers that fall behind (the bench shares two cores with
// it), so it lists and watches again whenever a watch ends; a request
// written during such a gap is timed when the list sees it, which can only
// overstate its latency.
func (e *env) watchRequests(ctx context.Context, seen func(*unstructured.Unstructured)) {
	for ctx.Err() == nil {
		list, err := e.dyn.Resource(requestGVR).List(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for i := range list.Items {
			seen(&list.Items[i])
		}
		w, err := e.dyn.Resource(requestGVR).Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				seen(u)
			}
		}
	}
}

// reasons counts the requests by their Ready reason, to say why a run
// stalled.
func (e *env) reasons() map[string]int {
	out := map[string]int{}
	list, err := e.dyn.Resource(requestGVR).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return map[string]int{err.Error(): 1}
	}
	for _, u := range list.Items {
		reason := "none"
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == v1alpha1.ReadyCondition {
				reason, _ = m["reason"].(string)
			}
		}
		out[reason]++
	}
	return out
}

func isWritten(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == v1alpha1.WrittenCondition && m["status"] == "True" {
			return true
		}
	}
	return false
}

// profileStall saves the router's goroutines (-stall-profile) the first
// time no request has become Written for 600 ms while some are waiting (a
// commit cycle is about 150 ms): where its workers wait during a stall.
func (e *env) profileStall(ctx context.Context, last func() (time.Time, bool)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if at, waiting := last(); waiting && time.Since(at) > 600*time.Millisecond {
			if err := e.router.saveProfile("goroutine?debug=1", e.o.stallProfile); err != nil {
				step("stall profile: %v", err)
				return
			}
			step("no request Written for %s: the router's goroutines are in %s", time.Since(at).Round(time.Millisecond), e.o.stallProfile)
			return
		}
	}
}

// slowest lists the slowest 1% of requests as "second of creation:
// latency", in creation order: slow requests that cluster at a period
// point at what runs with that period.
func slowest(created []time.Time, lat []float64, start time.Time) string {
	idx := make([]int, len(lat))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return lat[idx[a]] > lat[idx[b]] })
	idx = idx[:max(1, len(idx)/100)]
	sort.Slice(idx, func(a, b int) bool { return created[idx[a]].Before(created[idx[b]]) })
	var out []string
	for _, i := range idx {
		out = append(out, fmt.Sprintf("%.1fs:%.0fms", created[i].Sub(start).Seconds(), lat[i]))
	}
	return strings.Join(out, " ")
}

func pct(sorted []float64, p float64) float64 {
	return sorted[int(p*float64(len(sorted)-1))]
}

// restart stops the router and starts a new one on a fresh data directory
// (a new pod), then waits until it has reconciled every request.
func (e *env) restart(bin string, args []string) (*restartResult, error) {
	e.router.stop()
	before, writesBefore := e.commits(), e.objectWrites()
	var err error
	start := time.Now()
	if e.router, err = startRouter(bin, filepath.Join(e.tmp, "data-2"), e.o.memLimit, args); err != nil {
		return nil, err
	}
	profiled := make(chan error, 1)
	if e.o.restartProfile != "" {
		go func() {
			// Its pprof server comes up with the process; ask until it answers.
			var err error
			if perr := poll(2*time.Second, func() (bool, error) {
				err = e.router.saveProfile("profile?seconds=10", e.o.restartProfile)
				return err == nil, nil
			}); perr != nil {
				err = fmt.Errorf("%w: %v", perr, err)
			}
			profiled <- err
		}()
	}
	label := `{controller="request-DynamoDBRequest.aws.switchyard.dev"`
	r := &restartResult{}
	// A restart reconciles every request once: 5 minutes, or 200 a second.
	if err := poll(max(5*time.Minute, time.Duration(e.o.requests/200)*time.Second), func() (bool, error) {
		done := e.router.metric(`controller_runtime_reconcile_total` + label + `,result="success"}`)
		if done > 0 && r.FirstReconcileSeconds == 0 {
			r.FirstReconcileSeconds = time.Since(start).Seconds()
		}
		depth := e.router.metric(`workqueue_depth` + label)
		return done >= float64(e.o.requests) && depth == 0, nil
	}); err != nil {
		return nil, fmt.Errorf("the restarted router did not converge: %w", err)
	}
	r.ConvergeSeconds = time.Since(start).Seconds()
	if e.o.restartProfile != "" {
		if err := <-profiled; err != nil {
			return nil, err
		}
		step("CPU profile of the router's first 10 s after the restart: %s", e.o.restartProfile)
	}
	time.Sleep(2 * time.Second) // let any stray write land before counting
	r.NewCommits = e.commits() - before
	if e.s3 != nil {
		r.NewCommits = e.objectWrites() - writesBefore
	}
	r.PeakRSSMiB = e.router.peakRSSMiB()
	return r, nil
}

// commits counts the Git commits, or for a bucket the versions the router
// recorded (version marker writes).
func (e *env) commits() int {
	if e.s3 != nil {
		n := 0
		for _, w := range e.s3.Writes() {
			if strings.HasSuffix(w.Key, "/"+bucketstate.ControlDir+"/"+bucketstate.MarkerFile) {
				n++
			}
		}
		return n
	}
	out, err := testenv.GitE(e.git.RepoDir("bench"), "rev-list", "--count", "main")
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(out)
	return n
}

// objectWrites counts the object puts and deletes a bucket store served,
// version markers included and the store's write checks (a put and a
// delete in the control directory, every store check) left out; 0 for Git.
func (e *env) objectWrites() int {
	if e.s3 == nil {
		return 0
	}
	n := 0
	for _, w := range e.s3.Writes() {
		if !strings.Contains(w.Key, "/"+bucketstate.ControlDir+"/write-check-") {
			n++
		}
	}
	return n
}

func (e *env) files() int {
	if e.s3 != nil {
		keys, err := e.s3.List(benchBucket)
		if err != nil {
			return -1
		}
		return len(keys)
	}
	out, err := testenv.GitE(e.git.RepoDir("bench"), "ls-tree", "-r", "--name-only", "main")
	if err != nil {
		return -1
	}
	return strings.Count(out, "\n") + 1
}

func dirSizeKiB(dir string) int64 {
	var total int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total / 1024
}

func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// routerProcess is the router running as a child process.
type routerProcess struct {
	cmd     *exec.Cmd
	metrics string
	pprof   string // base URL of its pprof endpoints
	exited  chan struct{}
}

func startRouter(bin, dataDir, memLimit string, args []string) (*routerProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := []string{"run", "--namespace", "default", "--metrics-bind-address", addr, "--metrics-secure=false", "--health-probe-bind-address", "0", "--data-dir", dataDir}
	// pprof always, on a free port unless BENCH_PPROF_ADDR names one: the
	// heap profile is taken at the end of a run (-heapprofile).
	pprof := os.Getenv("BENCH_PPROF_ADDR")
	if pprof == "" {
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		pprof = fmt.Sprintf("127.0.0.1:%d", pport)
	}
	base = append(base, "--pprof-bind-address", pprof)
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if memLimit != "" {
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &routerProcess{cmd: cmd, metrics: "http://" + addr + "/metrics", pprof: "http://" + pprof, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.exited) }()
	return r, nil
}

func (r *routerProcess) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// cpuSeconds is the router's user plus system CPU time so far.
func (r *routerProcess) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// peakRSSMiB is the router's peak resident set size (VmHWM).
func (r *routerProcess) peakRSSMiB() float64 { return r.statusMiB("VmHWM:") }

// statusMiB reads a size in kB, such as VmRSS:, from the router's
// /proc/<pid>/status.
func (r *routerProcess) statusMiB(field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), field) {
			kb, _ := strconv.ParseFloat(strings.Fields(s.Text())[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// metric sums the samples of a Prometheus series from the router's
// /metrics whose line starts with prefix.
func (r *routerProcess) metric(prefix string) float64 {
	resp, err := http.Get(r.metrics)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}
