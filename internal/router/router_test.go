package router_test

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

func labels(suite string, kv ...string) map[string]string {
	l := map[string]string{"suite": suite, "provider": "localstack", "env": "dev"}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

// Twenty requests with different selectors over three destinations.
func TestTwentyRequestsAreSpreadAndWritten(t *testing.T) {
	start := time.Now()
	_, url := scenario(t, "spread")
	newDestination(t, "spread-eu-1", "spread", labels("spread", "region", "eu-west-1"))
	newDestination(t, "spread-eu-2", "spread", labels("spread", "region", "eu-west-1"))
	newDestination(t, "spread-us-1", "spread", labels("spread", "region", "us-east-1"))
	newNamespace(t, "team-a")
	newNamespace(t, "team-b")

	// 8 pinned to eu-west-1, 4 to us-east-1, 8 anywhere.
	want := map[string]string{} // request -> region it needs ("" any)
	created := time.Now()
	for i := 0; i < 20; i++ {
		ns := []string{"team-a", "team-b"}[i%2]
		name := fmt.Sprintf("table-%02d", i)
		var sel map[string]any
		switch {
		case i < 8:
			sel = map[string]any{"region": "eu-west-1"}
		case i < 12:
			sel = map[string]any{"region": "us-east-1"}
		}
		createRequest(t, ns, name, tableSpec("orders-"+name, "spread", sel))
		if sel != nil {
			want[ns+"/"+name] = sel["region"].(string)
		} else {
			want[ns+"/"+name] = ""
		}
	}
	files := map[string]bool{}
	perDest := map[string]int{}
	for key, region := range want {
		ns, name, _ := strings.Cut(key, "/")
		st := waitReadyRequest(t, ns, name)
		if region == "eu-west-1" && !strings.HasPrefix(st.Destination, "spread-eu-") ||
			region == "us-east-1" && st.Destination != "spread-us-1" {
			t.Errorf("%s needs %s but is on %s", key, region, st.Destination)
		}
		if len(st.Commit) != 40 || st.PlacementReason == "" || st.ObservedGeneration != 1 {
			t.Errorf("%s: incomplete status %+v", key, st)
		}
		perDest[st.Destination]++
		files[requestFile(st.Destination, ns, name)] = true
	}
	elapsed := time.Since(created)
	inRepo := testenv.Files(t, url)
	for f := range files {
		if !contains(inRepo, f) {
			t.Errorf("%s missing from the repo", f)
		}
	}
	// Least loaded: 20 over 3 balances to 7/7/6 whatever the order.
	for d, n := range perDest {
		if n < 6 || n > 7 {
			t.Errorf("spread %v: %s has %d", perDest, d, n)
		}
	}
	// Each file holds the rendered Table.
	clone := testenv.Clone(t, url)
	b, err := os.ReadFile(filepath.Join(clone, requestFile(mustStatus(t, "team-a", "table-00").Destination, "team-a", "table-00")))
	if err != nil {
		t.Fatal(err)
	}
	var table map[string]any
	if err := yaml.Unmarshal(b, &table); err != nil || table["kind"] != "Table" {
		t.Fatalf("table.yaml: %v %s", err, b)
	}
	commits := testenv.Git(t, clone, "rev-list", "--count", "HEAD")
	t.Logf("20 requests Ready %s after the first create (%s for the whole test incl. setup); %s commits; spread %v",
		elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), commits, perDest)
	noLeak(t)
}

func mustStatus(t *testing.T, ns, name string) v1alpha1.RequestStatus {
	t.Helper()
	st, err := requestStatus(t, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRequestWaitsForMatchingDestination(t *testing.T) {
	_, url := scenario(t, "wait")
	newNamespace(t, "team-wait")
	createRequest(t, "team-wait", "early", tableSpec("early", "wait", nil))
	st := waitCondition(t, "team-wait", "early", v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.NoMatchingDestination, 20*time.Second)
	if st.Destination != "" {
		t.Fatalf("waiting request has destination %q", st.Destination)
	}
	created := time.Now()
	newDestination(t, "wait-1", "wait", labels("wait"))
	st = waitCondition(t, "team-wait", "early", v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, 10*time.Second)
	t.Logf("placed %s after its destination was created", time.Since(created).Round(time.Millisecond))
	if st.Destination != "wait-1" || !contains(testenv.Files(t, url), requestFile("wait-1", "team-wait", "early")) {
		t.Fatalf("not written to wait-1: %+v", st)
	}
}

// TestNamespaceSelectorRefusesOtherTenants: a destination that takes only
// namespaces labelled tenant=a refuses a request from another namespace,
// with a reason that says so, and takes one from tenant a.
func TestNamespaceSelectorRefusesOtherTenants(t *testing.T) {
	_, url := scenario(t, "tenancy")
	newNamespace(t, "team-other")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-tenant", Labels: map[string]string{"tenant": "a"}}}
	if err := k8s.Create(ctx(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	newDestination(t, "tenancy-1", "tenancy", labels("tenancy"), func(d *v1alpha1.Destination) {
		d.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}}
	})
	createRequest(t, "team-other", "intruder", tableSpec("intruder", "tenancy", nil))
	createRequest(t, "team-tenant", "owner", tableSpec("owner", "tenancy", nil))
	st := waitCondition(t, "team-other", "intruder", v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.NoMatchingDestination, 20*time.Second)
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ScheduledCondition); !strings.Contains(c.Message, "namespace team-other") {
		t.Errorf("refusal message %q does not name the namespace", c.Message)
	}
	if st := waitReadyRequest(t, "team-tenant", "owner"); st.Destination != "tenancy-1" {
		t.Errorf("tenant's request on %q", st.Destination)
	}
	files := testenv.Files(t, url)
	if contains(files, requestFile("tenancy-1", "team-other", "intruder")) || !contains(files, requestFile("tenancy-1", "team-tenant", "owner")) {
		t.Errorf("repo files %v", files)
	}
	// Labelling the namespace admits it: the waiting request is placed at
	// once (well before the one-minute recheck of waiting requests).
	other := &corev1.Namespace{}
	other.Name = "team-other"
	if err := k8s.Patch(ctx(t), other, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"tenant":"a"}}}`))); err != nil {
		t.Fatal(err)
	}
	relabelled := time.Now()
	st = waitCondition(t, "team-other", "intruder", v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, 20*time.Second)
	t.Logf("placed %s after its namespace was labelled", time.Since(relabelled).Round(time.Millisecond))
	if st.Destination != "tenancy-1" {
		t.Errorf("admitted request on %q", st.Destination)
	}
}

// A relabelled destination keeps its requests (Misplaced); deleting one
// moves them: that part runs for both store kinds in TestStoreScenarios.
func TestRelabelIsMisplaced(t *testing.T) {
	_, url := scenario(t, "move")
	newDestination(t, "move-1", "move", labels("move"))
	newNamespace(t, "team-move")
	createRequest(t, "team-move", "mover", tableSpec("mover", "move", nil))
	st := waitReadyRequest(t, "team-move", "mover")
	if st.Destination != "move-1" {
		t.Fatalf("placed on %s", st.Destination)
	}
	newDestination(t, "move-2", "move", labels("move"))

	// Relabel: the request no longer matches, and stays.
	d := &v1alpha1.Destination{}
	d.Name = "move-1"
	relabel := []byte(`{"metadata":{"labels":{"suite":"elsewhere"}}}`)
	if err := k8s.Patch(ctx(t), d, client.RawPatch(types.MergePatchType, relabel)); err != nil {
		t.Fatal(err)
	}
	st = waitCondition(t, "team-move", "mover", v1alpha1.ScheduledCondition, metav1.ConditionTrue, v1alpha1.Misplaced, 10*time.Second)
	if st.Destination != "move-1" || !contains(testenv.Files(t, url), requestFile("move-1", "team-move", "mover")) {
		t.Fatalf("misplaced request moved: %+v", st)
	}
}

func conditionStatus(st v1alpha1.RequestStatus, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return string(c.Status)
		}
	}
	return ""
}

func TestDeleteWithUnreachableStoreHasEscapeHatch(t *testing.T) {
	g, url := scenario(t, "hatch")
	newDestination(t, "hatch-1", "hatch", labels("hatch"))
	newNamespace(t, "team-hatch")
	createRequest(t, "team-hatch", "stuck", tableSpec("stuck", "hatch", nil))
	waitReadyRequest(t, "team-hatch", "stuck")

	g.Proxy.Stop() // the store is unreachable from now on
	req := dynamoDBRequest("team-hatch", "stuck", nil)
	if err := k8s.Delete(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	st := waitCondition(t, "team-hatch", "stuck", v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.Deleting, 30*time.Second)
	c := st.Conditions[len(st.Conditions)-1]
	for _, c2 := range st.Conditions {
		if c2.Type == v1alpha1.ReadyCondition {
			c = c2
		}
	}
	if !strings.Contains(c.Message, v1alpha1.SkipCleanupAnnotation) {
		t.Fatalf("message does not name the escape hatch: %s", c.Message)
	}
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, v1alpha1.SkipCleanupAnnotation))
	if err := k8s.Patch(ctx(t), req, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, req, 60*time.Second)
	if err := g.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	// As documented, the files stay when cleanup is skipped.
	if !contains(testenv.Files(t, url), requestFile("hatch-1", "team-hatch", "stuck")) {
		t.Fatal("skip-cleanup removed the files")
	}
	noLeak(t)
}

func TestInvalidRequestsAreRefused(t *testing.T) {
	startRouter(t)
	installPromise(t)
	newNamespace(t, "team-bad")
	key := map[string]any{"name": "id", "type": "S"}
	tests := []struct {
		name string
		spec map[string]any
		want string
	}{
		{"bad-name", map[string]any{"tableName": "no", "hashKey": key}, "spec.tableName"},
		{"traversal", map[string]any{"tableName": "../etc/passwd", "hashKey": key}, "spec.tableName"},
		{"newline", map[string]any{"tableName": "a\nb: c", "hashKey": key}, "spec.tableName"},
		{"key-type", map[string]any{"tableName": "good", "hashKey": map[string]any{"name": "id", "type": "X"}}, "spec.hashKey.type"},
		{"no-key", map[string]any{"tableName": "good"}, "spec.hashKey: Required value"},
		{"provisioned", map[string]any{"tableName": "good", "hashKey": key, "billingMode": "PROVISIONED"}, "billingMode PROVISIONED needs readCapacityUnits"},
		{"billing", map[string]any{"tableName": "good", "hashKey": key, "billingMode": "FREE"}, "spec.billingMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k8s.Create(ctx(t), dynamoDBRequest("team-bad", tt.name, tt.spec))
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want Invalid mentioning %q", err, tt.want)
			}
		})
	}
	for _, name := range []string{"../escape", "a/b", "new\nline"} {
		err := k8s.Create(ctx(t), dynamoDBRequest("team-bad", name, map[string]any{"tableName": "good", "hashKey": key}))
		if err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

// TestInvalidObjectsAreRefused: bad stores, destinations and Promises are
// refused by the API server (schema and CEL) with a message naming the
// field; a Promise whose embedded API is unusable is reported in its Ready
// condition with what to fix.
func TestInvalidObjectsAreRefused(t *testing.T) {
	startRouter(t)
	store := func(spec v1alpha1.GitStateStoreSpec) client.Object {
		return &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bad-store"}, Spec: spec}
	}
	dest := func(f func(*v1alpha1.DestinationSpec)) client.Object {
		d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "bad-dest"},
			Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Name: "s"}}}
		f(&d.Spec)
		return d
	}
	bucket := func(f func(*v1alpha1.BucketStateStoreSpec)) client.Object {
		b := &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bad-bucket"}, Spec: v1alpha1.BucketStateStoreSpec{
			Endpoint: "s3.example.com", BucketName: "state", SecretRef: &v1alpha1.SecretReference{Name: "s", Namespace: "default"}}}
		f(&b.Spec)
		return b
	}
	capacity := int32(-1)
	tests := []struct {
		name string
		obj  client.Object
		want string
	}{
		{"store file url", store(v1alpha1.GitStateStoreSpec{URL: "file:///tmp/repo"}), "spec.url"},
		{"store ssh over https", store(v1alpha1.GitStateStoreSpec{URL: "https://git.example.com/r.git", AuthMethod: "ssh",
			SecretRef: &v1alpha1.SecretReference{Name: "s", Namespace: "default"}}), "authMethod ssh needs an ssh:// url"},
		{"store path escapes", store(v1alpha1.GitStateStoreSpec{URL: "https://git.example.com/r.git", Path: "../up"}), "spec.path"},
		{"bucket http without insecure", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.Endpoint = "http://127.0.0.1:9000" }), "insecure: true"},
		{"bucket https with insecure", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.Endpoint, s.Insecure = "https://s3.example.com", true }), "contradicts insecure"},
		{"bucket endpoint with a path", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.Endpoint = "s3.example.com/other" }), "spec.endpoint"},
		{"bucket name", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.BucketName = "Bad_Bucket" }), "spec.bucketName"},
		{"bucket path escapes", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.Path = "a/../.." }), "spec.path"},
		{"bucket access key without secret", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.SecretRef = nil }), "needs a secretRef"},
		{"bucket auth method", bucket(func(s *v1alpha1.BucketStateStoreSpec) { s.AuthMethod = "token" }), "spec.authMethod"},
		{"destination store kind", dest(func(s *v1alpha1.DestinationSpec) { s.StateStoreRef.Kind = "S3Store" }), "spec.stateStoreRef.kind"},
		{"destination path escapes", dest(func(s *v1alpha1.DestinationSpec) { s.Path = "a/../../b" }), "spec.path"},
		{"destination cleanup", dest(func(s *v1alpha1.DestinationSpec) { s.Cleanup = "some" }), "spec.cleanup"},
		{"destination capacity", dest(func(s *v1alpha1.DestinationSpec) { s.Capacity = &capacity }), "spec.capacity"},
		{"destination aws endpoint", dest(func(s *v1alpha1.DestinationSpec) {
			s.AWS = &v1alpha1.AWSSpec{Endpoint: "ftp://x", Region: "r", SecretRef: v1alpha1.SecretReference{Name: "s", Namespace: "n"}}
		}), "spec.aws.endpoint"},
		{"destination flux url", dest(func(s *v1alpha1.DestinationSpec) { s.Flux.URL = "file:///x" }), "spec.flux.url"},
		{"promise template name", &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "bad-promise"}, Spec: v1alpha1.PromiseSpec{
			API:       runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
			Resources: []v1alpha1.ResourceTemplate{{Name: "Bad_Name", Template: "x"}}}}, "spec.resources[0].name"},
		{"promise claim name", &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "bad-promise"}, Spec: v1alpha1.PromiseSpec{
			API:    runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
			Claims: []v1alpha1.Claim{{Name: "Table", Key: "{{ .spec.tableName }}"}}}}, "spec.claims[0].name"},
		{"promise claim scope", &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "bad-promise"}, Spec: v1alpha1.PromiseSpec{
			API:    runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
			Claims: []v1alpha1.Claim{{Name: "table", Key: "{{ .spec.tableName }}", Scope: "Account"}}}}, "spec.claims[0].scope"},
		{"promise claim key", &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "bad-promise"}, Spec: v1alpha1.PromiseSpec{
			API:    runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
			Claims: []v1alpha1.Claim{{Name: "table"}}}}, "spec.claims[0].key"},
		{"pipeline kind", workflowPromise(func(p *v1alpha1.Pipeline) { p.Kind = "Job" }), "a workflow lists platform.kratix.io/v1alpha1 Pipelines"},
		{"pipeline name", workflowPromise(func(p *v1alpha1.Pipeline) { p.Metadata.Name = "Bad_Name" }), "spec.workflows.resource.configure[0].metadata.name"},
		{"pipeline without containers", workflowPromise(func(p *v1alpha1.Pipeline) { p.Spec.Containers = nil }), "spec.workflows.resource.configure[0].spec.containers"},
		{"pipeline pull policy", workflowPromise(func(p *v1alpha1.Pipeline) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }), "imagePullPolicy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k8s.Create(ctx(t), tt.obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want Invalid mentioning %q", err, tt.want)
			}
		})
	}
	// What the schema cannot see: a reserved volume name.
	bad := workflowPromise(func(p *v1alpha1.Pipeline) {
		p.Spec.Volumes = []runtime.RawExtension{{Raw: []byte(`{"name":"kratix-output","emptyDir":{}}`)}}
	})
	bad.Spec.API = shippedPromise(t).Spec.API
	bad.Name = "bad-workflow"
	if err := k8s.Create(ctx(t), bad); err != nil {
		t.Fatal(err)
	}
	track(bad)
	waitPromiseReason(t, bad.Name, v1alpha1.InvalidWorkflow, `spec.workflows.resource.configure[0].spec.volumes: "kratix-output" is reserved`)
	p := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "not-a-crd"}, Spec: v1alpha1.PromiseSpec{
		API: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`)}}}
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	track(p)
	waitPromiseReason(t, p.Name, v1alpha1.InvalidAPI, "CustomResourceDefinition")
}

// waitPromiseReason waits until Promise name is Ready=False with reason and
// a message holding msg.
func waitPromiseReason(t *testing.T, name, reason, msg string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "Promise "+name+" "+reason, func() (bool, string) {
		var got v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, &got); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionFalse && c.Reason == reason && strings.Contains(c.Message, msg), c.Reason + ": " + c.Message
	})
}

// workflowPromise is a Promise with one resource.configure pipeline, as
// edit leaves it.
func workflowPromise(edit func(*v1alpha1.Pipeline)) *v1alpha1.Promise {
	pl := v1alpha1.Pipeline{APIVersion: "platform.kratix.io/v1alpha1", Kind: "Pipeline",
		Metadata: v1alpha1.PipelineMetadata{Name: "configure"},
		Spec:     v1alpha1.PipelineSpec{Containers: []v1alpha1.Container{{Name: "main", Image: "example.com/main:1"}}}}
	edit(&pl)
	return &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "bad-promise"}, Spec: v1alpha1.PromiseSpec{
		API:       runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)},
		Workflows: &v1alpha1.Workflows{Resource: &v1alpha1.WorkflowActions{Configure: []v1alpha1.Pipeline{pl}}}}}
}

func TestHostileValuesAreNeutralised(t *testing.T) {
	_, url := scenario(t, "hostile")
	newDestination(t, "hostile-1", "hostile", labels("hostile"))
	newNamespace(t, "team-hostile")
	evil := "id\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: stolen}"
	spec := tableSpec("hostile", "hostile", nil)
	spec["hashKey"] = map[string]any{"name": evil, "type": "S"}
	spec["tags"] = map[string]any{"x: y\n- z": "v\nevil: true"}
	createRequest(t, "team-hostile", "evil", spec)
	waitReadyRequest(t, "team-hostile", "evil")

	clone := testenv.Clone(t, url)
	var outside []string
	filepath.Walk(clone, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(clone, p)
		if err == nil && !info.IsDir() && !strings.HasPrefix(rel, ".git/") &&
			!strings.HasPrefix(rel, "clusters/hostile-1/") {
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Fatalf("files outside the destination: %v", outside)
	}
	b, err := os.ReadFile(filepath.Join(clone, requestFile("hostile-1", "team-hostile", "evil")))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	var table struct {
		Kind string
		Spec struct {
			AttributeDefinitions []map[string]string `json:"attributeDefinitions"`
			Tags                 []map[string]string `json:"tags"`
		}
	}
	if err := yaml.Unmarshal(b, &table); err != nil || len(docs) != 1 || table.Kind != "Table" {
		t.Fatalf("want one Table document, got %d: %v\n%s", len(docs), err, b)
	}
	if got := table.Spec.AttributeDefinitions[0]["attributeName"]; got != evil {
		t.Fatalf("attribute name %q", got)
	}
	if len(table.Spec.Tags) != 1 || table.Spec.Tags[0]["key"] != "x: y\n- z" {
		t.Fatalf("tags %v", table.Spec.Tags)
	}
}

func TestOtherWritersCommitsSurvive(t *testing.T) {
	_, url := scenario(t, "shared")
	newDestination(t, "shared-1", "shared", labels("shared"))
	newNamespace(t, "team-shared")
	createRequest(t, "team-shared", "first", tableSpec("first", "shared", nil))
	waitReadyRequest(t, "team-shared", "first")

	theirs := testenv.PushOtherCommit(t, url, "NOTES.md", "kept by someone else\n")

	for i := 0; i < 5; i++ {
		createRequest(t, "team-shared", fmt.Sprintf("after-%d", i), tableSpec(fmt.Sprintf("after-%d", i), "shared", nil))
	}
	for i := 0; i < 5; i++ {
		waitReadyRequest(t, "team-shared", fmt.Sprintf("after-%d", i))
	}
	testenv.CheckHistoryKeeps(t, url, theirs)
	files := testenv.Files(t, url)
	if !contains(files, "NOTES.md") || !contains(files, requestFile("shared-1", "team-shared", "after-4")) {
		t.Fatalf("files %v", files)
	}
}

// queuePromise is a second, minimal Promise: the request controller is
// generic over kinds.
func queuePromise(suite string) *v1alpha1.Promise {
	crd := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"queuerequests.test.switchyard.dev"},
"spec":{"group":"test.switchyard.dev","scope":"Namespaced",
"names":{"kind":"QueueRequest","listKind":"QueueRequestList","plural":"queuerequests","singular":"queuerequest"},
"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
"properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"}}}}}}}]}}`
	dep := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"queues"}}`
	return &v1alpha1.Promise{
		ObjectMeta: metav1.ObjectMeta{Name: "queue"},
		Spec: v1alpha1.PromiseSpec{
			API:                  runtime.RawExtension{Raw: []byte(crd)},
			DestinationSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"suite": suite}}},
			Resources: []v1alpha1.ResourceTemplate{{Name: "queue", Template: `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .metadata.name }}
  namespace: queues
data:
  size: "{{ .spec.size }}"
`}},
			Dependencies: []runtime.RawExtension{{Raw: []byte(dep)}},
		},
	}
}

func TestPromiseDeletionWaitsForRequests(t *testing.T) {
	g := testenv.StartGitServer(t)
	// With the opt-in rights, so the Promise's finalizer policy is there to
	// be removed with it.
	optInAdmissionPolicy(t)
	startRouter(t)
	url := newStore(t, g, "promdel")
	newDestination(t, "promdel-1", "promdel", labels("promdel"))
	p := queuePromise("promdel")
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	// The router may not touch QueueRequests until an admin grants it.
	testenv.WaitFor(t, 30*time.Second, "Promise queue MissingPermissions", func() (bool, string) {
		var got v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "queue"}, &got); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Reason == v1alpha1.MissingPermissions && strings.Contains(c.Message, "router rbac queue"), c.Reason + ": " + c.Message
	})
	if err := testenv.GrantPromise(ctx(t), k8s, p, routerNamespace); err != nil {
		t.Fatal(err)
	}
	waitReady(t, &v1alpha1.Promise{}, "queue", 30*time.Second)
	depFile := "clusters/promdel-1/dependencies/queue/dependencies.yaml"
	if !contains(testenv.Files(t, url), depFile) {
		t.Fatalf("dependencies not written")
	}
	newNamespace(t, "team-queue")
	q := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(3)}}}
	q.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1", Kind: "QueueRequest"})
	q.SetNamespace("team-queue")
	q.SetName("jobs")
	if err := k8s.Create(ctx(t), q); err != nil {
		t.Fatal(err)
	}
	reqFile := "clusters/promdel-1/resources/team-queue/queue/jobs/queue.yaml"
	testenv.WaitFor(t, 30*time.Second, "queue request written", func() (bool, string) {
		files := testenv.Files(t, url)
		return contains(files, reqFile), strings.Join(files, " ")
	})

	policy := &admissionv1.MutatingAdmissionPolicy{}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{}
	policyName := types.NamespacedName{Name: controller.FinalizerPolicyName("queue")}
	// Installed once the API server has had the kind's schema a while.
	testenv.WaitFor(t, 30*time.Second, "the Promise's finalizer policy", func() (bool, string) {
		for _, o := range []client.Object{policy, binding} {
			if err := k8s.Get(ctx(t), policyName, o); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})

	if err := k8s.Delete(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "RequestsExist", func() (bool, string) {
		var got v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "queue"}, &got); err != nil {
			return false, err.Error()
		}
		for _, c := range got.Status.Conditions {
			if c.Type == v1alpha1.ReadyCondition {
				return c.Reason == v1alpha1.RequestsExist && strings.Contains(c.Message, "kubectl delete queuerequests"), c.Message
			}
		}
		return false, "no Ready condition"
	})
	var crd apiextensionsv1.CustomResourceDefinition
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: "queuerequests.test.switchyard.dev"}, &crd); err != nil {
		t.Fatalf("the CRD went while requests exist: %v", err)
	}
	if err := k8s.Delete(ctx(t), q); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "Promise and CRD gone", func() (bool, string) {
		perr := k8s.Get(ctx(t), types.NamespacedName{Name: "queue"}, &v1alpha1.Promise{})
		cerr := k8s.Get(ctx(t), types.NamespacedName{Name: "queuerequests.test.switchyard.dev"}, &apiextensionsv1.CustomResourceDefinition{})
		return apierrors.IsNotFound(perr) && apierrors.IsNotFound(cerr), fmt.Sprintf("promise: %v; crd: %v", perr, cerr)
	})
	for _, o := range []client.Object{policy, binding} {
		if err := k8s.Get(ctx(t), policyName, o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s left behind: %v", o, policyName.Name, err)
		}
	}
	files := testenv.Files(t, url)
	if contains(files, depFile) || contains(files, reqFile) {
		t.Fatalf("files left behind: %v", files)
	}
}

// TestLeaderElectionHandsOver runs two routers with leader election: only
// the leader writes (only its data directory gets a clone), and stopping
// it hands over to the other, which places the next request.
func TestLeaderElectionHandsOver(t *testing.T) {
	g := testenv.StartGitServer(t)
	lease, renew, retry := 2*time.Second, 1500*time.Millisecond, 200*time.Millisecond
	elect := func(o *ctrl.Options) {
		o.LeaderElection, o.LeaderElectionID, o.LeaderElectionNamespace = true, "switchyard-router-test", "default"
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = &lease, &renew, &retry
		o.LeaderElectionReleaseOnCancel = true
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	stopA := startRouterIn(t, dirA, elect)
	testenv.WaitFor(t, 30*time.Second, "router A to lead", func() (bool, string) {
		var l coordinationv1.Lease
		err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "default", Name: "switchyard-router-test"}, &l)
		return err == nil && l.Spec.HolderIdentity != nil, fmt.Sprint(err)
	})
	startRouterIn(t, dirB, elect)
	installPromise(t)
	url := newStore(t, g, "leader")
	newNamespace(t, "team-leader")
	newDestination(t, "leader-1", "leader", labels("leader"))
	createRequest(t, "team-leader", "first", tableSpec("first", "leader", nil))
	waitReadyRequest(t, "team-leader", "first")
	if entries, _ := os.ReadDir(dirB); len(entries) != 0 {
		t.Errorf("the follower wrote to its data directory: %v", entries)
	}
	stopA()
	createRequest(t, "team-leader", "second", tableSpec("second", "leader", nil))
	st := waitCondition(t, "team-leader", "second", v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, 30*time.Second)
	if entries, _ := os.ReadDir(dirB); len(entries) == 0 {
		t.Errorf("the new leader has no clone: did it write?")
	}
	files := testenv.Files(t, url)
	for _, name := range []string{"first", "second"} {
		if !contains(files, requestFile("leader-1", "team-leader", name)) {
			t.Errorf("%s is not in the repo: %v", name, files)
		}
	}
	t.Logf("second request Ready on %s after the handover", st.Destination)
}

// TestDeleteDestinationWith500Placements deletes a destination (cleanup:
// all) holding 500 requests: every one is rescheduled to the other
// destination and is in the repository exactly once, there.
func TestDeleteDestinationWith500Placements(t *testing.T) {
	_, url := scenario(t, "big")
	newDestination(t, "big-1", "big", labels("big"), func(d *v1alpha1.Destination) { d.Spec.Cleanup = v1alpha1.CleanupAll })
	newNamespace(t, "team-big")
	const n = 500
	for i := range n {
		createRequest(t, "team-big", fmt.Sprintf("r%03d", i), tableSpec(fmt.Sprintf("r%03d", i), "big", nil))
	}
	placedOn := func(dest string) func() (bool, string) {
		return func() (bool, string) {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
			if err := k8s.List(ctx(t), list, client.InNamespace("team-big")); err != nil {
				return false, err.Error()
			}
			ok := 0
			for _, u := range list.Items {
				d, _, _ := unstructured.NestedString(u.Object, "status", "destination")
				if d == dest && conditionStatus(statusOf(t, &u), v1alpha1.ReadyCondition) == "True" {
					ok++
				}
			}
			return ok == n, fmt.Sprintf("%d of %d Ready on %s", ok, n, dest)
		}
	}
	testenv.WaitFor(t, time.Minute, "all on big-1", placedOn("big-1"))
	newDestination(t, "big-2", "big", labels("big"))
	d := &v1alpha1.Destination{}
	d.Name = "big-1"
	if err := k8s.Delete(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Each request leaves big-1 in steps that wait for Flux there; with no
	// Flux to see, the test confirms each revision, as a person would.
	testenv.WaitFor(t, 2*time.Minute, "all rescheduled to big-2", confirmingFlux(t, "big-1", gitHead(t, url), placedOn("big-2")))
	testenv.WaitFor(t, time.Minute, "big-1's directory removed", confirmingFlux(t, "big-1", gitHead(t, url), func() (bool, string) {
		for _, f := range testenv.Files(t, url) {
			if strings.HasPrefix(f, "clusters/big-1/") {
				return false, f
			}
		}
		return true, ""
	}))
	t.Logf("%d requests rescheduled in %s", n, time.Since(start).Round(time.Millisecond))
	count := map[string]int{}
	for _, f := range testenv.Files(t, url) {
		if strings.HasPrefix(f, "clusters/big-2/resources/team-big/") {
			count[strings.Split(f, "/")[5]]++
		}
	}
	for i := range n {
		if name := fmt.Sprintf("r%03d", i); count[name] != 1 {
			t.Errorf("%s is in the repo %d times", name, count[name])
		}
	}
	// Leave no 500 requests for the next tests' routers to start with.
	u := dynamoDBRequest("team-big", "", nil)
	if err := k8s.DeleteAllOf(ctx(t), u, client.InNamespace("team-big")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "the requests deleted", func() (bool, string) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
		err := k8s.List(ctx(t), list, client.InNamespace("team-big"))
		return err == nil && len(list.Items) == 0, fmt.Sprintf("%d left (%v)", len(list.Items), err)
	})
}

func statusOf(t *testing.T, u *unstructured.Unstructured) v1alpha1.RequestStatus {
	var st v1alpha1.RequestStatus
	raw, _ := u.Object["status"].(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDriftIsRepaired: another writer deletes one of the router's files and
// edits another, in a commit of its own. The router sees the branch move
// (at its next store check, or when its own push is refused and replayed)
// and writes both back, without touching the other writer's history; a
// rewrite asked for with the annotation on an intact repository, once the
// router took it (its Rewriting event), changes nothing.
func TestDriftIsRepaired(t *testing.T) {
	_, url := scenario(t, "drift")
	newDestination(t, "drift-1", "drift", labels("drift"))
	newNamespace(t, "team-drift")
	for _, n := range []string{"gone", "edited"} {
		createRequest(t, "team-drift", n, tableSpec(n, "drift", nil))
		waitReadyRequest(t, "team-drift", n)
	}
	gone, edited := requestFile("drift-1", "team-drift", "gone"), requestFile("drift-1", "team-drift", "edited")
	dir := testenv.Clone(t, url)
	want, err := os.ReadFile(filepath.Join(dir, edited))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, dir, "rm", "-q", gone)
	if err := os.WriteFile(filepath.Join(dir, edited), []byte("tampered: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, dir, "commit", "-q", "-am", "someone edits the router's files")
	testenv.Git(t, dir, "push", "-q", "origin", "main")
	other := testenv.Git(t, dir, "rev-parse", "HEAD")

	testenv.WaitFor(t, time.Minute, "both files written back", func() (bool, string) {
		check := testenv.Clone(t, url)
		got, err := os.ReadFile(filepath.Join(check, edited))
		_, goneErr := os.Stat(filepath.Join(check, gone))
		return err == nil && string(got) == string(want) && goneErr == nil, fmt.Sprintf("edited: %q, gone: %v", got, goneErr)
	})
	testenv.CheckHistoryKeeps(t, url, other)

	head := testenv.Git(t, testenv.Clone(t, url), "rev-parse", "HEAD")
	st := &v1alpha1.GitStateStore{}
	st.Name = "drift"
	if err := k8s.Patch(ctx(t), st, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"switchyard.dev/rewrite":"1"}}}`))); err != nil {
		t.Fatal(err)
	}
	// The rewrite must have been taken (its destinations woken) before
	// "no commit" means anything.
	testenv.WaitFor(t, 30*time.Second, "the rewrite taken", func() (bool, string) {
		var list eventsv1.EventList
		if err := k8s.List(ctx(t), &list); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.Regarding.Name == "drift" && e.Reason == v1alpha1.Rewriting && strings.Contains(e.Note, `"1"`) {
				return true, e.Note
			}
		}
		return false, fmt.Sprintf("no %s event among %d", v1alpha1.Rewriting, len(list.Items))
	})
	createRequest(t, "team-drift", "after", tableSpec("after", "drift", nil))
	waitReadyRequest(t, "team-drift", "after")
	log := testenv.Git(t, testenv.Clone(t, url), "log", "--format=%s", head+"..HEAD")
	if lines := strings.Split(log, "\n"); len(lines) != 1 || !strings.Contains(log, "after") {
		t.Errorf("commits after the rewrite on an intact repo: %q; want only the new request's", log)
	}
}

// TestAPIServerOutage cuts the router off its API server (every
// connection dropped, new ones refused, as a restart looks from outside)
// while requests are created, then lets it back: the router resumes, and
// every request is written exactly once, in one commit.
func TestAPIServerOutage(t *testing.T) {
	u, err := neturl.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, err := testenv.NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop) // after the router's cleanup, which needs it
	cfg := rest.CopyConfig(routerConfig)
	cfg.Host = "https://" + p.Addr
	g := testenv.StartGitServer(t)
	startRouterAt(t, cfg, t.TempDir())
	installPromise(t)
	url := newStore(t, g, "apiout")
	newDestination(t, "apiout-1", "apiout", labels("apiout"))
	newNamespace(t, "team-apiout")
	for i := range 10 {
		createRequest(t, "team-apiout", fmt.Sprintf("before-%d", i), tableSpec(fmt.Sprintf("before-%d", i), "apiout", nil))
	}
	for i := range 10 {
		waitReadyRequest(t, "team-apiout", fmt.Sprintf("before-%d", i))
	}
	p.Stop()
	for i := range 10 {
		createRequest(t, "team-apiout", fmt.Sprintf("during-%d", i), tableSpec(fmt.Sprintf("during-%d", i), "apiout", nil))
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for i := range 10 {
		waitCondition(t, "team-apiout", fmt.Sprintf("during-%d", i), v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, time.Minute)
	}
	t.Logf("requests created during the outage Ready %s after it ended", time.Since(back).Round(time.Millisecond))
	dir := testenv.Clone(t, url)
	for _, phase := range []string{"before", "during"} {
		for i := range 10 {
			file := requestFile("apiout-1", "team-apiout", fmt.Sprintf("%s-%d", phase, i))
			if commits := testenv.Git(t, dir, "log", "--format=%H", "--", file); len(strings.Fields(commits)) != 1 {
				t.Errorf("%s was written by %d commits, want 1", file, len(strings.Fields(commits)))
			}
		}
	}
}

// TestCrossNamespaceSecretsAreRefused: a cluster-scoped store may name a
// Secret only in the router's namespace. Another team's Secret, with
// working credentials, is refused before it is read (CrossNamespaceRef,
// naming the Secret and the flag); the same credentials in the router's
// namespace make the store Ready.
func TestCrossNamespaceSecretsAreRefused(t *testing.T) {
	g := testenv.StartGitServer(t)
	startRouter(t)
	url := g.NewRepo(t, "crossns")
	newNamespace(t, "team-crossns")
	creds := map[string]string{"username": testenv.GitUser, "password": testenv.GitPassword}
	for _, ns := range []string{"team-crossns", routerNamespace} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "crossns-git", Namespace: ns}, StringData: creds}
		if err := k8s.Create(ctx(t), s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), s) })
	}
	store := &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "crossns"}, Spec: v1alpha1.GitStateStoreSpec{
		URL: url, Path: "clusters", SecretRef: &v1alpha1.SecretReference{Name: "crossns-git", Namespace: "team-crossns"}}}
	if err := k8s.Create(ctx(t), store); err != nil {
		t.Fatal(err)
	}
	track(store)
	ref := v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "crossns"}
	testenv.WaitFor(t, 30*time.Second, "CrossNamespaceRef", func() (bool, string) {
		c := storeReady(t, ref)
		return c != nil && c.Reason == v1alpha1.CrossNamespaceRef && strings.Contains(c.Message, "team-crossns/crossns-git") &&
			strings.Contains(c.Message, "--allow-cross-namespace-refs"), fmt.Sprintf("%+v", c)
	})
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: "crossns"}, store); err != nil {
		t.Fatal(err)
	}
	store.Spec.SecretRef.Namespace = routerNamespace
	if err := k8s.Update(ctx(t), store); err != nil {
		t.Fatal(err)
	}
	waitReady(t, &v1alpha1.GitStateStore{}, "crossns", 30*time.Second)
}

// TestStayKeepsRequestOnLostDestination: a request of a Promise with
// reschedule policy Stay, whose destination is deleted, stays where it was
// (DestinationLost, with an event) and nothing is written for it
// elsewhere, even when it is reconciled again; a person's release
// (switchyard.dev/released-from) then places it on the other destination.
func TestStayKeepsRequestOnLostDestination(t *testing.T) {
	g := testenv.StartGitServer(t)
	startRouter(t)
	url := newStore(t, g, "stay")
	newDestination(t, "stay-1", "stay", labels("stay"))
	p := queuePromise("stay")
	p.Spec.Reschedule = &v1alpha1.Reschedule{Policy: v1alpha1.RescheduleStay}
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	track(p)
	// Its own grant: run alone, no earlier test has made one.
	if err := testenv.GrantPromise(ctx(t), k8s, p, routerNamespace); err != nil {
		t.Fatal(err)
	}
	waitReady(t, &v1alpha1.Promise{}, "queue", 30*time.Second)
	newNamespace(t, "team-stay")
	q := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(3)}}}
	q.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1", Kind: "QueueRequest"})
	q.SetNamespace("team-stay")
	q.SetName("jobs")
	if err := k8s.Create(ctx(t), q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, q) })
	queueStatus := func() (v1alpha1.RequestStatus, int64) {
		u := q.DeepCopy()
		if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(u), u); err != nil {
			t.Fatal(err)
		}
		return statusOf(t, u), u.GetGeneration()
	}
	testenv.WaitFor(t, 30*time.Second, "jobs Ready on stay-1", func() (bool, string) {
		st, _ := queueStatus()
		return st.Destination == "stay-1" && conditionStatus(st, v1alpha1.ReadyCondition) == "True", fmt.Sprintf("%+v", st)
	})
	newDestination(t, "stay-2", "stay", labels("stay"))

	d := &v1alpha1.Destination{}
	d.Name = "stay-1"
	deleteAndWait(t, d)
	lost := func(gen int64) func() (bool, string) {
		return func() (bool, string) {
			st, _ := queueStatus()
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
			if c == nil {
				return false, "no Ready condition"
			}
			return st.ObservedGeneration >= gen && st.Destination == "stay-1" && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.DestinationLost,
				fmt.Sprintf("on %q (generation %d): %s %s: %s", st.Destination, st.ObservedGeneration, c.Status, c.Reason, c.Message)
		}
	}
	testenv.WaitFor(t, 30*time.Second, "jobs DestinationLost on stay-1", lost(1))
	// A spec change makes a new reconcile; it still writes nothing.
	resize := []byte(`{"spec":{"size":4}}`)
	if err := k8s.Patch(ctx(t), q, client.RawPatch(types.MergePatchType, resize)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "jobs reconciled again, still DestinationLost", lost(q.GetGeneration()))
	for _, f := range testenv.Files(t, url) {
		if strings.HasPrefix(f, "clusters/stay-2/resources/") && f != "clusters/stay-2/resources/switchyard_canary.yaml" {
			t.Errorf("written elsewhere: %s", f)
		}
	}
	if !contains(testenv.Files(t, url), "clusters/stay-1/resources/team-stay/queue/jobs/queue.yaml") {
		t.Errorf("the copy on stay-1 is gone (cleanup: none keeps it)")
	}
	testenv.WaitForEvent(t, k8s, "team-stay", "jobs", v1alpha1.DestinationLost)

	release := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"stay-1"}}}`, v1alpha1.ReleasedFromAnnotation))
	if err := k8s.Patch(ctx(t), q, client.RawPatch(types.MergePatchType, release)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "jobs released to stay-2", func() (bool, string) {
		st, _ := queueStatus()
		return st.Destination == "stay-2" && conditionStatus(st, v1alpha1.ReadyCondition) == "True", fmt.Sprintf("%+v", st)
	})
	if !contains(testenv.Files(t, url), "clusters/stay-2/resources/team-stay/queue/jobs/queue.yaml") {
		t.Errorf("not written to stay-2 after the release")
	}

	// cleanup: all waits for a request that stays, and says so.
	d.Name = "stay-2"
	all := []byte(`{"spec":{"cleanup":"all"}}`)
	if err := k8s.Patch(ctx(t), d, client.RawPatch(types.MergePatchType, all)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "stay-2 Cleaning, waiting for jobs", func() (bool, string) {
		if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(d), d); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ReadyCondition)
		return c != nil && c.Reason == v1alpha1.Cleaning && strings.Contains(c.Message, "team-stay/jobs"), fmt.Sprintf("%+v", c)
	})
	testenv.WaitFor(t, 30*time.Second, "jobs DestinationLost on stay-2", func() (bool, string) {
		st, _ := queueStatus()
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		return st.Destination == "stay-2" && c != nil && c.Reason == v1alpha1.DestinationLost && strings.Contains(c.Message, "cleanup: all"), fmt.Sprintf("%+v", c)
	})
	// Deleting the request lets the cleanup go on: it prunes (confirmed
	// here, as no Flux runs) and the destination goes, saying so.
	deleteAndWait(t, q)
	testenv.WaitFor(t, 30*time.Second, "stay-2 cleaned up and gone", confirmingFlux(t, "stay-2", gitHead(t, url), func() (bool, string) {
		err := k8s.Get(ctx(t), client.ObjectKeyFromObject(d), &v1alpha1.Destination{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	}))
	for _, f := range testenv.Files(t, url) {
		if strings.HasPrefix(f, "clusters/stay-2/") {
			t.Errorf("left after cleanup: all: %s", f)
		}
	}
	var events eventsv1.EventList
	if err := k8s.List(ctx(t), &events); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events.Items {
		if e.Regarding.Kind == "Destination" && e.Regarding.Name == "stay-2" {
			reasons = append(reasons, e.Reason)
		}
	}
	if !slices.Contains(reasons, v1alpha1.Cleaning) || !slices.Contains(reasons, v1alpha1.CleanupDone) {
		t.Errorf("destination events %v; want Cleaning and CleanupDone", reasons)
	}
}

// TestCleanupNoneKeepsRequests: a destination deleted with cleanup: none
// keeps its cluster running the request's copy, so the request (policy
// Move) stays, DestinationLost, and nothing is written for it elsewhere.
func TestCleanupNoneKeepsRequests(t *testing.T) {
	_, url := scenario(t, "keep")
	newDestination(t, "keep-1", "keep", labels("keep"))
	newNamespace(t, "team-keep")
	createRequest(t, "team-keep", "kept", tableSpec("kept", "keep", nil))
	t.Cleanup(func() { deleteAndWait(t, dynamoDBRequest("team-keep", "kept", nil)) })
	if st := waitReadyRequest(t, "team-keep", "kept"); st.Destination != "keep-1" {
		t.Fatalf("placed on %s", st.Destination)
	}
	newDestination(t, "keep-2", "keep", labels("keep"))
	d := &v1alpha1.Destination{}
	d.Name = "keep-1"
	deleteAndWait(t, d)
	st := waitCondition(t, "team-keep", "kept", v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.DestinationLost, 30*time.Second)
	if st.Destination != "keep-1" {
		t.Errorf("destination %q, want keep-1", st.Destination)
	}
	files := testenv.Files(t, url)
	if !contains(files, requestFile("keep-1", "team-keep", "kept")) || contains(files, requestFile("keep-2", "team-keep", "kept")) {
		t.Errorf("files %v; want the copy on keep-1 kept and none on keep-2", files)
	}
}
