package router_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// backend reads a state store back without the router's code: the git CLI
// for a GitStateStore, plain S3 requests for a BucketStateStore.
type backend interface {
	ref() v1alpha1.StateStoreReference
	// files lists every file in the store (paths from the repository or
	// bucket root), leaving out a bucket's control directory.
	files(t *testing.T) []string
	read(t *testing.T, path string) []byte
	// mark and writtenSince list the paths written since a point in time.
	mark(t *testing.T) string
	writtenSince(t *testing.T, mark string) []string
	// head is the store's current revision.
	head(t *testing.T) string
	// later reports whether revision b comes after revision a.
	later(t *testing.T, a, b string) bool
	// stop and start the store's server on the same address.
	stop()
	start(t *testing.T)
	// unreachable is the store's Ready reason while its server is down.
	unreachable() string
	// revisionLength is the length of the store's revisions.
	revisionLength() int
	// check verifies the store's own integrity.
	check(t *testing.T)
	// putOther writes files as another writer would.
	putOther(t *testing.T, paths ...string)
}

// storeKinds is the table of store kinds every scenario runs against.
var storeKinds = []struct {
	name string
	// open starts a server and creates a Ready store named suite.
	open func(t *testing.T, suite string) backend
}{
	{"git", openGit},
	{"bucket", openBucket},
}

// storeScenarios is the suite both store kinds pass.
var storeScenarios = []struct {
	name string
	run  func(t *testing.T, b backend, suite string)
}{
	{"PlaceSpreadsAndWrites", placeSpreadsAndWrites},
	{"DeleteDestinationMovesRequests", deleteDestinationMovesRequests},
	{"DeleteRequestRemovesFiles", deleteRequestRemovesFiles},
	{"OutageIsReportedAndConverges", outageIsReportedAndConverges},
	{"RestartMakesNoWrites", restartMakesNoWrites},
	{"SweepRemovesOrphans", sweepRemovesOrphans},
}

func TestStoreScenarios(t *testing.T) {
	for _, kind := range storeKinds {
		for i, sc := range storeScenarios {
			t.Run(kind.name+"/"+sc.name, func(t *testing.T) {
				suite := fmt.Sprintf("%s-%d", kind.name, i)
				startRouter(t)
				installPromise(t)
				b := kind.open(t, suite)
				newNamespace(t, "team-"+suite)
				sc.run(t, b, suite)
				confined(t, b, suite)
				b.check(t)
				noLeak(t)
			})
		}
	}
}

// addDestinations creates destinations <suite>-1 to <suite>-n of b's store.
func addDestinations(t *testing.T, b backend, suite string, n int) {
	for i := 1; i <= n; i++ {
		newDestinationIn(t, fmt.Sprintf("%s-%d", suite, i), b.ref(), labels(suite))
	}
}

// confined checks that every file lies in a directory of one of the
// suite's destinations, under the store's path.
func confined(t *testing.T, b backend, suite string) {
	t.Helper()
	for _, f := range b.files(t) {
		parts := strings.Split(f, "/")
		if len(parts) < 4 || parts[0] != "clusters" || !strings.HasPrefix(parts[1], suite+"-") ||
			(parts[2] != "resources" && parts[2] != "dependencies") {
			t.Errorf("%s is outside every destination's directory", f)
		}
	}
}

func placeSpreadsAndWrites(t *testing.T, b backend, suite string) {
	addDestinations(t, b, suite, 3)
	ns := "team-" + suite
	created := time.Now()
	for i := 0; i < 9; i++ {
		createRequest(t, ns, fmt.Sprintf("t-%d", i), tableSpec(fmt.Sprintf("t-%d", i), suite, nil))
	}
	perDest := map[string]int{}
	want := map[string]bool{}
	for i := 0; i < 9; i++ {
		name := fmt.Sprintf("t-%d", i)
		st := waitReadyRequest(t, ns, name)
		if len(st.Commit) != b.revisionLength() || st.PlacementReason == "" || st.ObservedGeneration != 1 {
			t.Errorf("%s: incomplete status %+v", name, st)
		}
		perDest[st.Destination]++
		want[requestFile(st.Destination, ns, name)] = true
	}
	t.Logf("9 requests Ready %s after the first create", time.Since(created).Round(time.Millisecond))
	files := b.files(t)
	for f := range want {
		if !contains(files, f) {
			t.Errorf("%s missing from the store", f)
		}
	}
	for d, n := range perDest {
		if n != 3 {
			t.Errorf("least loaded should give 3 each: %v (%s)", perDest, d)
		}
	}
	var table map[string]any
	st := mustStatus(t, ns, "t-0")
	if err := yaml.Unmarshal(b.read(t, requestFile(st.Destination, ns, "t-0")), &table); err != nil || table["kind"] != "Table" {
		t.Fatalf("table.yaml: %v %v", err, table)
	}
}

func deleteDestinationMovesRequests(t *testing.T, b backend, suite string) {
	first, second := suite+"-1", suite+"-2"
	newDestinationIn(t, first, b.ref(), labels(suite), func(d *v1alpha1.Destination) { d.Spec.Cleanup = v1alpha1.CleanupAll })
	ns := "team-" + suite
	createRequest(t, ns, "mover", tableSpec("mover", suite, nil))
	if st := waitReadyRequest(t, ns, "mover"); st.Destination != first {
		t.Fatalf("placed on %s", st.Destination)
	}
	newDestinationIn(t, second, b.ref(), labels(suite))
	d := &v1alpha1.Destination{}
	d.Name = first
	if err := k8s.Delete(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	// No Flux runs here: the test confirms each revision the move and the
	// cleanup wait for, as a person would.
	head := func() string { return b.head(t) }
	testenv.WaitFor(t, 30*time.Second, "request on "+second, confirmingFlux(t, first, head, func() (bool, string) {
		st, err := requestStatus(t, ns, "mover")
		if err != nil {
			return false, err.Error()
		}
		return st.Destination == second && conditionStatus(st, v1alpha1.ReadyCondition) == "True", fmt.Sprintf("%+v", st)
	}))
	testenv.WaitFor(t, 30*time.Second, "files moved and "+first+" removed (cleanup: all)", confirmingFlux(t, first, head, func() (bool, string) {
		files := b.files(t)
		moved := contains(files, requestFile(second, ns, "mover"))
		for _, f := range files {
			if strings.HasPrefix(f, "clusters/"+first+"/") {
				moved = false
			}
		}
		return moved, strings.Join(files, " ")
	}))
	testenv.WaitForEvent(t, k8s, ns, "mover", "Rescheduled")
}

func deleteRequestRemovesFiles(t *testing.T, b backend, suite string) {
	addDestinations(t, b, suite, 1)
	dest, ns := suite+"-1", "team-"+suite
	createRequest(t, ns, "gone", tableSpec("gone", suite, nil))
	createRequest(t, ns, "kept", tableSpec("kept", suite, nil))
	placed := waitReadyRequest(t, ns, "gone")
	waitReadyRequest(t, ns, "kept")
	mark := b.mark(t)
	if err := k8s.Delete(ctx(t), dynamoDBRequest(ns, "gone", nil)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, dynamoDBRequest(ns, "gone", nil), 30*time.Second)
	files := b.files(t)
	if contains(files, requestFile(dest, ns, "gone")) || !contains(files, requestFile(dest, ns, "kept")) {
		t.Fatalf("files after delete: %v", files)
	}
	if written := b.writtenSince(t, mark); !slices.Equal(written, []string{requestFile(dest, ns, "gone")}) {
		t.Errorf("deleting one request wrote %v", written)
	}
	testenv.WaitFor(t, 30*time.Second, "the store's revision after the removal", func() (bool, string) {
		return b.later(t, placed.Commit, b.head(t)), "head " + b.head(t)
	})
	// Canaries keep both directories alive.
	for _, f := range []string{"clusters/" + dest + "/dependencies/switchyard_canary.yaml", "clusters/" + dest + "/resources/switchyard_canary.yaml"} {
		if !contains(files, f) {
			t.Errorf("%s missing", f)
		}
	}
}

func outageIsReportedAndConverges(t *testing.T, b backend, suite string) {
	addDestinations(t, b, suite, 1)
	dest, ns := suite+"-1", "team-"+suite
	createRequest(t, ns, "before", tableSpec("before", suite, nil))
	waitReadyRequest(t, ns, "before")

	b.stop()
	for i := 0; i < 3; i++ {
		createRequest(t, ns, fmt.Sprintf("during-%d", i), tableSpec(fmt.Sprintf("during-%d", i), suite, nil))
	}
	// The write fails (WriteFailed), or the store check saw the outage
	// first (StateStoreNotReady): either way the request says so.
	var st v1alpha1.RequestStatus
	testenv.WaitFor(t, 60*time.Second, "during-0 Written=False for the outage", func() (bool, string) {
		var err error
		if st, err = requestStatus(t, ns, "during-0"); err != nil {
			return false, err.Error()
		}
		for _, c := range st.Conditions {
			if c.Type == v1alpha1.WrittenCondition {
				return c.Status == metav1.ConditionFalse && (c.Reason == v1alpha1.WriteFailed || c.Reason == v1alpha1.StateStoreNotReady), c.Reason + ": " + c.Message
			}
		}
		return false, "no Written condition"
	})
	if st.Destination != dest {
		t.Fatalf("placement lost during the outage: %+v", st)
	}
	testenv.WaitFor(t, 30*time.Second, "store not Ready", func() (bool, string) {
		c := storeReady(t, b.ref())
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == b.unreachable(), fmt.Sprintf("%+v", c)
	})
	back := time.Now()
	b.start(t)
	for i := 0; i < 3; i++ {
		waitCondition(t, ns, fmt.Sprintf("during-%d", i), v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, 90*time.Second)
	}
	t.Logf("converged %s after the server returned", time.Since(back).Round(time.Millisecond))
	files := b.files(t)
	for _, n := range []string{"before", "during-0", "during-1", "during-2"} {
		if !contains(files, requestFile(dest, ns, n)) {
			t.Errorf("%s missing", n)
		}
	}
}

// sweepRemovesOrphans: a request's files left while the router was down
// (its request gone) are removed when the router starts; a live
// request's files and a directory of no Promise stay.
func sweepRemovesOrphans(t *testing.T, b backend, suite string) {
	addDestinations(t, b, suite, 1)
	ns, dest := "team-"+suite, suite+"-1"
	createRequest(t, ns, "live", tableSpec("live", suite, nil))
	waitReadyRequest(t, ns, "live")
	lastStop()
	ghost := requestFile(dest, ns, "ghost")
	foreign := fmt.Sprintf("clusters/%s/resources/%s/nopromise/x/a.yaml", dest, ns)
	b.putOther(t, ghost, foreign)
	// No grace: the orphan goes at the second sweep after the start.
	startRouterWith(t, routerConfig, router.Options{DataDir: t.TempDir(), StoreInterval: 2 * time.Second, SweepGrace: time.Nanosecond})
	testenv.WaitFor(t, 30*time.Second, "the orphan swept", func() (bool, string) {
		files := b.files(t)
		return !contains(files, ghost), strings.Join(files, " ")
	})
	files := b.files(t)
	if !contains(files, requestFile(dest, ns, "live")) || !contains(files, foreign) {
		t.Fatalf("the sweep removed more than the orphan: %v", files)
	}
}

func restartMakesNoWrites(t *testing.T, b backend, suite string) {
	addDestinations(t, b, suite, 2)
	ns := "team-" + suite
	placed := map[string]string{}
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("r-%d", i)
		createRequest(t, ns, name, tableSpec(name, suite, nil))
	}
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("r-%d", i)
		placed[name] = waitReadyRequest(t, ns, name).Destination
	}
	mark := b.mark(t)
	lastStop()
	// Lose one request's status too: its placement must come back from
	// the store.
	lost := dynamoDBRequest(ns, "r-0", nil)
	if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: ns, Name: "r-0"}, lost); err != nil {
		t.Fatal(err)
	}
	lost.Object["status"] = map[string]any{}
	if err := k8s.Status().Update(ctx(t), lost); err != nil {
		t.Fatal(err)
	}
	startRouter(t)
	// A new destination with no load would attract re-placed requests.
	third := suite + "-3"
	newDestinationIn(t, third, b.ref(), labels(suite))
	for name, dest := range placed {
		if st := waitReadyRequest(t, ns, name); st.Destination != dest {
			t.Errorf("%s moved from %s to %s after restart", name, dest, st.Destination)
		}
	}
	// Only the new destination's canaries and dependencies were written.
	for _, f := range b.writtenSince(t, mark) {
		if !strings.HasPrefix(f, "clusters/"+third+"/") {
			t.Errorf("%s written after the restart", f)
		}
	}
}

func storeReady(t *testing.T, ref v1alpha1.StateStoreReference) *metav1.Condition {
	var store client.Object = &v1alpha1.GitStateStore{}
	if ref.Kind == v1alpha1.BucketStateStoreKind {
		store = &v1alpha1.BucketStateStore{}
	}
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: ref.Name}, store); err != nil {
		return nil
	}
	return meta.FindStatusCondition(conditionsOf(store), v1alpha1.ReadyCondition)
}

// gitBackend is a GitStateStore on a smart-HTTP Git server.
type gitBackend struct {
	g         *testenv.GitServer
	name, url string
}

func openGit(t *testing.T, suite string) backend {
	g := testenv.StartGitServer(t)
	return &gitBackend{g: g, name: suite, url: newStore(t, g, suite)}
}

func (b *gitBackend) putOther(t *testing.T, paths ...string) { pushOrphans(t, b.url, paths...) }

func (b *gitBackend) ref() v1alpha1.StateStoreReference {
	return v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: b.name}
}
func (b *gitBackend) files(t *testing.T) []string { return testenv.Files(t, b.url) }
func (b *gitBackend) read(t *testing.T, path string) []byte {
	data, err := os.ReadFile(filepath.Join(testenv.Clone(t, b.url), path))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
func (b *gitBackend) head(t *testing.T) string {
	return testenv.Git(t, testenv.Clone(t, b.url), "rev-parse", "HEAD")
}
func (b *gitBackend) mark(t *testing.T) string { return b.head(t) }
func (b *gitBackend) writtenSince(t *testing.T, mark string) []string {
	out := testenv.Git(t, testenv.Clone(t, b.url), "diff", "--name-only", mark, "HEAD")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}
func (b *gitBackend) later(t *testing.T, a, c string) bool {
	_, err := testenv.GitE(testenv.Clone(t, b.url), "merge-base", "--is-ancestor", a, c)
	return err == nil && a != c
}
func (b *gitBackend) stop()               { b.g.Proxy.Stop() }
func (b *gitBackend) unreachable() string { return v1alpha1.RepositoryUnreachable }
func (b *gitBackend) revisionLength() int { return 40 }
func (b *gitBackend) start(t *testing.T) {
	if err := b.g.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
}
func (b *gitBackend) check(t *testing.T) {
	if out, err := testenv.GitE(b.g.RepoDir(b.name), "fsck", "--full"); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}
}

// bucketBackend is a BucketStateStore on an S3-compatible server.
type bucketBackend struct {
	s          *testenv.S3Server
	name       string
	bucketName string
}

func openBucket(t *testing.T, suite string) backend {
	b := &bucketBackend{name: suite, bucketName: "state-" + suite}
	b.s = testenv.StartS3(t, b.bucketName)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: suite + "-s3", Namespace: "default"},
		StringData: map[string]string{"accessKeyID": testenv.S3AccessKey, "secretAccessKey": testenv.S3SecretKey}}
	if err := k8s.Create(ctx(t), secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx(t), secret) })
	store := &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: suite}, Spec: v1alpha1.BucketStateStoreSpec{
		Endpoint: b.s.Endpoint, Insecure: true, BucketName: b.bucketName, Region: testenv.S3Region, Path: "clusters",
		SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}
	if err := k8s.Create(ctx(t), store); err != nil {
		t.Fatal(err)
	}
	track(store)
	waitReady(t, &v1alpha1.BucketStateStore{}, suite, 30*time.Second)
	return b
}

const controlPrefix = "clusters/" + bucketstate.ControlDir + "/"

func (b *bucketBackend) putOther(t *testing.T, paths ...string) {
	for _, p := range paths {
		b.s.Put(t, b.bucketName, p, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphan\n"))
	}
}

func (b *bucketBackend) ref() v1alpha1.StateStoreReference {
	return v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: b.name}
}
func (b *bucketBackend) files(t *testing.T) []string {
	var out []string
	for _, k := range b.s.Keys(t, b.bucketName) {
		if !strings.HasPrefix(k, controlPrefix) {
			out = append(out, k)
		}
	}
	return out
}
func (b *bucketBackend) read(t *testing.T, path string) []byte { return b.s.Get(t, b.bucketName, path) }
func (b *bucketBackend) marker(t *testing.T) bucketstate.Marker {
	var m bucketstate.Marker
	if err := json.Unmarshal(b.s.Get(t, b.bucketName, controlPrefix+bucketstate.MarkerFile), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
func (b *bucketBackend) head(t *testing.T) string { return b.marker(t).Revision }
func (b *bucketBackend) mark(t *testing.T) string { return strconv.Itoa(len(b.s.Writes())) }
func (b *bucketBackend) writtenSince(t *testing.T, mark string) []string {
	n, _ := strconv.Atoi(mark)
	var out []string
	for _, w := range b.s.Writes()[n:] {
		if !strings.HasPrefix(w.Key, controlPrefix) {
			out = append(out, w.Key)
		}
	}
	return out
}
func (b *bucketBackend) later(t *testing.T, a, c string) bool {
	var i, j int
	for n, v := range b.marker(t).History {
		switch v.Revision {
		case a:
			i = n + 1
		case c:
			j = n + 1
		}
	}
	return i > 0 && j > i
}
func (b *bucketBackend) stop()               { b.s.Proxy.Stop() }
func (b *bucketBackend) unreachable() string { return v1alpha1.BucketUnreachable }
func (b *bucketBackend) revisionLength() int { return 64 }
func (b *bucketBackend) start(t *testing.T) {
	if err := b.s.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
}

// check: the marker names the store's content as Flux digests it, and the
// control directory holds only the marker (write checks leave nothing
// behind).
func (b *bucketBackend) check(t *testing.T) {
	testenv.WaitFor(t, 30*time.Second, "the version marker naming the bucket's content", func() (bool, string) {
		m, d := b.marker(t).Revision, b.s.FluxDigest(t, b.bucketName, "clusters")
		return m == d, fmt.Sprintf("marker %.12s, content %.12s", m, d)
	})
	for _, k := range b.s.Keys(t, b.bucketName) {
		if strings.HasPrefix(k, controlPrefix) && k != controlPrefix+bucketstate.MarkerFile {
			t.Errorf("%s left in the control directory", k)
		}
	}
}

// A BucketStateStore that cannot be used says why, naming the Secret, key
// or bucket, never a secret value; fixing it makes it Ready.
func TestBucketStoreConditions(t *testing.T) {
	startRouter(t)
	s := testenv.StartS3(t, "conditions")
	newSecret := func(name string, data map[string]string) {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, StringData: data}
		if err := k8s.Create(ctx(t), secret); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(ctx(t), secret) })
	}
	newSecret("bucket-no-key", map[string]string{"accessKeyID": testenv.S3AccessKey})
	const wrongSecret = "someone-elses-secret-access-key"
	newSecret("bucket-wrong-key", map[string]string{"accessKeyID": "someone-else", "secretAccessKey": wrongSecret})
	newSecret("bucket-good", map[string]string{"accessKeyID": testenv.S3AccessKey, "secretAccessKey": testenv.S3SecretKey})
	tests := []struct {
		name, secret, bucket string
		reason, message      string
	}{
		{"missing-secret", "bucket-absent", "conditions", v1alpha1.SecretNotFound, "default/bucket-absent not found"},
		{"missing-key", "bucket-no-key", "conditions", v1alpha1.InvalidSecret, `has no "secretAccessKey"`},
		{"wrong-key", "bucket-wrong-key", "conditions", v1alpha1.BucketUnreachable, "InvalidAccessKeyId"},
		{"no-such-bucket", "bucket-good", "absent", v1alpha1.BucketUnreachable, "NoSuchBucket"},
		{"ok", "bucket-good", "conditions", v1alpha1.Reconciled, "is writable"},
	}
	// authMethod IAM takes the SDK's default chain, here the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.S3SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests = append(tests, struct {
		name, secret, bucket string
		reason, message      string
	}{"iam", "", "conditions", v1alpha1.Reconciled, "is writable"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: "cond-" + tt.name}, Spec: v1alpha1.BucketStateStoreSpec{
				Endpoint: s.Endpoint, Insecure: true, BucketName: tt.bucket, Path: tt.name,
				SecretRef: &v1alpha1.SecretReference{Name: tt.secret, Namespace: "default"}}}
			if tt.secret == "" {
				st.Spec.AuthMethod, st.Spec.SecretRef = v1alpha1.IAMAuthMethod, nil
			}
			if err := k8s.Create(ctx(t), st); err != nil {
				t.Fatal(err)
			}
			track(st)
			ref := v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: st.Name}
			testenv.WaitFor(t, 30*time.Second, tt.reason, func() (bool, string) {
				c := storeReady(t, ref)
				return c != nil && c.Reason == tt.reason && strings.Contains(c.Message, tt.message), fmt.Sprintf("%+v", c)
			})
			if c := storeReady(t, ref); strings.Contains(c.Message, testenv.S3SecretKey) || strings.Contains(c.Message, wrongSecret) {
				t.Fatal("the condition names a secret")
			}
		})
	}
}
