package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
	"github.com/switchyard-dev/switchyard/internal/render"
)

// dirs are one run's files, under a test's temporary directory.
type dirs struct{ root, input, output, metadata, termination string }

func newDirs(t *testing.T) dirs {
	root := t.TempDir()
	d := dirs{root: root, input: filepath.Join(root, "input", "object.yaml"), output: filepath.Join(root, "output"),
		metadata: filepath.Join(root, "metadata"), termination: filepath.Join(root, "termination-log")}
	for _, dir := range []string{filepath.Dir(d.input), d.output, d.metadata} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// runPipeline runs the program on request as a container would, with the
// paths given by the environment, and returns its exit code and stderr.
func runPipeline(t *testing.T, d dirs, request string, env map[string]string) (int, string) {
	t.Helper()
	if err := os.WriteFile(d.input, []byte(request), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		pipelinekit.InputEnv: d.input, pipelinekit.OutputDirEnv: d.output,
		pipelinekit.MetadataDirEnv: d.metadata, pipelinekit.TerminationLogEnv: d.termination,
		"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_WORKFLOW_ACTION": "configure",
	}
	for k, v := range env {
		vars[k] = v
	}
	var out, errOut bytes.Buffer
	code := execute(nil, func(k string) string { return vars[k] }, &out, &errOut)
	return code, errOut.String()
}

// templateTable is the Table the template Promise renders for request,
// without the keys the router adds to every object it renders, in the
// pipeline's namespace.
func templateTable(t *testing.T, request string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../config/promises/dynamodb/promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Promise
	if err := sigsyaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatal(err)
	}
	files, err := render.Request(p.Spec.Resources, render.Input{Request: defaulted(t, request), Promise: p.Name, Destination: "dev-1"})
	if err != nil {
		t.Fatalf("template Promise: %v", err)
	}
	obj := oneObject(t, files["table.yaml"])
	stripRouterKeys(obj)
	// The one difference: the pipeline's Tables have a namespace of their own.
	obj.SetNamespace(tableNamespace)
	return obj.Object
}

// defaulted is request as the API server stores it, with the request
// CRD's default billingMode: the template sees it, the pipeline must
// supply it.
func defaulted(t *testing.T, request string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(request), &obj); err != nil {
		t.Fatal(err)
	}
	spec, _ := obj["spec"].(map[string]any)
	if _, ok := spec["billingMode"]; !ok && spec != nil {
		spec["billingMode"] = "PAY_PER_REQUEST"
	}
	return obj
}

func oneObject(t *testing.T, b []byte) *unstructured.Unstructured {
	t.Helper()
	objs, err := render.Objects(b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("want one object, got %d (%v):\n%s", len(objs), err, b)
	}
	return objs[0]
}

// stripRouterKeys removes the switchyard.dev/ annotations and labels, and
// the maps they leave empty: the router adds them to whatever a template
// or a pipeline produced.
func stripRouterKeys(obj *unstructured.Unstructured) {
	strip := func(m map[string]string) map[string]string {
		for k := range m {
			if strings.HasPrefix(k, "switchyard.dev/") {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			return nil // unstructured drops the field only for nil
		}
		return m
	}
	obj.SetAnnotations(strip(obj.GetAnnotations()))
	obj.SetLabels(strip(obj.GetLabels()))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const ordersRequest = `apiVersion: aws.switchyard.dev/v1alpha1
kind: DynamoDBTableRequest
metadata: {name: orders, namespace: team-a, uid: 0b5c3d1e-1111-4222-8333-944445555666}
spec:
  tableName: orders
  hashKey: {name: orderId, type: S}
`

// TestTableMatchesTemplatePromise runs the pipeline and the template
// Promise on the same requests: the Tables must be the same objects.
func TestTableMatchesTemplatePromise(t *testing.T) {
	tests := []struct{ name, request string }{
		{"hash key only, default billing", ordersRequest},
		{"range key and tags", `apiVersion: aws.switchyard.dev/v1alpha1
kind: DynamoDBTableRequest
metadata: {name: events, namespace: team-a}
spec:
  tableName: events
  hashKey: {name: streamId, type: S}
  rangeKey: {name: sequence, type: "N"}
  tags: {team: a, cost-centre: "42", flag: "true", odd: "a: b\n---\nc", "<<": merge}
`},
		{"provisioned", `apiVersion: aws.switchyard.dev/v1alpha1
kind: DynamoDBTableRequest
metadata: {name: sessions, namespace: team-b}
spec:
  tableName: sessions
  hashKey: {name: sessionId, type: B}
  billingMode: PROVISIONED
  readCapacityUnits: 5
  writeCapacityUnits: 40000
`},
		{"pay per request given, selector, dotted name", `apiVersion: aws.switchyard.dev/v1alpha1
kind: DynamoDBTableRequest
metadata: {name: audit, namespace: team-b}
spec:
  tableName: audit.log
  billingMode: PAY_PER_REQUEST
  hashKey: {name: id, type: S}
  destinationSelector: {env: prod, provider: aws}
`},
		{"empty range key and tags are absent", `apiVersion: aws.switchyard.dev/v1alpha1
kind: DynamoDBTableRequest
metadata: {name: plain, namespace: team-b}
spec:
  tableName: plain
  hashKey: {name: id, type: "N"}
  rangeKey: {}
  tags: {}
`},
	}
	for _, s := range sampleRequests(t) {
		tests = append(tests, struct{ name, request string }{"sample " + s.name, s.request})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			if code, stderr := runPipeline(t, d, tt.request, nil); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := oneObject(t, []byte(readFile(t, filepath.Join(d.output, "table.yaml")))).Object
			if want := templateTable(t, tt.request); !reflect.DeepEqual(got, want) {
				g, _ := sigsyaml.Marshal(got)
				w, _ := sigsyaml.Marshal(want)
				t.Errorf("pipeline's Table differs from the template Promise's:\n got:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// sampleRequests are the DynamoDB requests config/samples ships, for both
// Promises, with their kind's names.
func sampleRequests(t *testing.T) []struct{ name, request string } {
	t.Helper()
	var out []struct{ name, request string }
	for _, file := range []string{"requests.yaml", "kratix-tables.yaml"} {
		for _, doc := range strings.Split(readFile(t, filepath.Join("../../config/samples", file)), "\n---\n") {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if kind, _ := obj["kind"].(string); kind != "DynamoDBRequest" && kind != "DynamoDBTableRequest" {
				continue
			}
			out = append(out, struct{ name, request string }{file + " " + pipelinekit.NestedString(obj, "metadata", "name"), doc})
		}
	}
	if len(out) < 6 {
		t.Fatalf("found %d sample requests, want the 5 DynamoDBRequests and 3 DynamoDBTableRequests", len(out))
	}
	return out
}

// TestMetadata checks the selectors and the status the pipeline writes,
// with and without an earlier container's metadata.
func TestMetadata(t *testing.T) {
	tests := []struct {
		name             string
		selector         string // the request's spec.destinationSelector, as YAML flow
		earlierSelectors string // destination-selectors.yaml before the run
		earlierStatus    string // status.yaml before the run
		wantSelectors    string // "" means no file
		wantStatus       string
	}{
		{
			name:       "no selector",
			wantStatus: "message: table orders requested\ntableName: orders\n",
		},
		{
			name:          "region selector",
			selector:      "{region: eu-west-1}",
			wantSelectors: "- matchLabels:\n    region: eu-west-1\n",
			wantStatus:    "message: table orders requested\nregion: eu-west-1\ntableName: orders\n",
		},
		{
			name:             "added to an earlier container's",
			selector:         "{env: prod, provider: aws}",
			earlierSelectors: "- matchLabels: {team: a}\n",
			earlierStatus:    "phase: checked\nmessage: earlier\n",
			wantSelectors:    "- matchLabels:\n    team: a\n- matchLabels:\n    env: prod\n    provider: aws\n",
			wantStatus:       "message: table orders requested\nphase: checked\ntableName: orders\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			writeIf(t, filepath.Join(d.metadata, pipelinekit.DestinationSelectorsFile), tt.earlierSelectors)
			writeIf(t, filepath.Join(d.metadata, pipelinekit.StatusFile), tt.earlierStatus)
			request := ordersRequest
			if tt.selector != "" {
				request += "  destinationSelector: " + tt.selector + "\n"
			}
			if code, stderr := runPipeline(t, d, request, nil); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			selectors, err := os.ReadFile(filepath.Join(d.metadata, pipelinekit.DestinationSelectorsFile))
			if tt.wantSelectors == "" && !os.IsNotExist(err) {
				t.Errorf("destination-selectors.yaml written with no selector: %q %v", selectors, err)
			} else if tt.wantSelectors != "" && string(selectors) != tt.wantSelectors {
				t.Errorf("destination-selectors.yaml:\n got %q\nwant %q", selectors, tt.wantSelectors)
			}
			if got := readFile(t, filepath.Join(d.metadata, pipelinekit.StatusFile)); got != tt.wantStatus {
				t.Errorf("status.yaml:\n got %q\nwant %q", got, tt.wantStatus)
			}
		})
	}
}

func writeIf(t *testing.T, path, content string) {
	t.Helper()
	if content == "" {
		return
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteWritesNothing: on delete the router removes what configure
// wrote; the pipeline has nothing to add.
func TestDeleteWritesNothing(t *testing.T) {
	d := newDirs(t)
	code, stderr := runPipeline(t, d, ordersRequest+"  destinationSelector: {region: eu-west-1}\n", map[string]string{"KRATIX_WORKFLOW_ACTION": "delete"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, dir := range []string{d.output, d.metadata} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s has %d files after delete, want none", dir, len(entries))
		}
	}
}

// TestErrors checks that a bad run exits 1, says why on stderr and in the
// termination log, and writes no Table.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, request string
		env           map[string]string
		want          string
	}{
		{"no table name", strings.Replace(ordersRequest, "tableName: orders", "tableName: \"\"", 1), nil, "request team-a/orders: spec.tableName must be set"},
		{"no hash key", strings.Replace(ordersRequest, "hashKey: {name: orderId, type: S}", "billingMode: PAY_PER_REQUEST", 1), nil, "spec.hashKey must be set"},
		{"range key without type", ordersRequest + "  rangeKey: {name: at}\n", nil, "spec.rangeKey needs a name and a type"},
		{"provisioned without capacity", ordersRequest + "  billingMode: PROVISIONED\n  readCapacityUnits: 1\n", nil, "spec.writeCapacityUnits must be set"},
		{"fractional capacity", ordersRequest + "  billingMode: PROVISIONED\n  readCapacityUnits: 1.5\n  writeCapacityUnits: 1\n", nil, "spec.readCapacityUnits is 1.5; want a whole number"},
		{"tag not a string", ordersRequest + "  tags: {n: 1}\n", nil, "spec.tags.n is a int; want a string"},
		{"selector not a map", ordersRequest + "  destinationSelector: eu\n", nil, "spec.destinationSelector is a string; want a map of strings"},
		{"no namespace", strings.Replace(ordersRequest, "namespace: team-a, ", "", 1), nil, "metadata.name and metadata.namespace must be set"},
		{"not YAML", "spec: [", nil, "is not YAML"},
		{"empty input", "", nil, "is empty"},
		{"promise workflow", ordersRequest, map[string]string{"KRATIX_WORKFLOW_TYPE": "promise"}, `KRATIX_WORKFLOW_TYPE is "promise": this program runs as a resource workflow`},
		{"unknown action", ordersRequest, map[string]string{"KRATIX_WORKFLOW_ACTION": "resume"}, `KRATIX_WORKFLOW_ACTION is "resume"; want configure or delete`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			code, stderr := runPipeline(t, d, tt.request, tt.env)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", stderr, tt.want)
			}
			if log := readFile(t, d.termination); !strings.Contains(log, tt.want) {
				t.Errorf("termination log %q does not say %q", log, tt.want)
			}
			if _, err := os.Stat(filepath.Join(d.output, "table.yaml")); !os.IsNotExist(err) {
				t.Errorf("table.yaml written on failure (%v)", err)
			}
		})
	}
}

// TestMissingInputAndFlags: the flags override the paths, and a missing
// input is an error, reported where the flag says.
func TestMissingInputAndFlags(t *testing.T) {
	d := newDirs(t)
	var out, errOut bytes.Buffer
	args := []string{"--input", filepath.Join(d.root, "nowhere.yaml"), "--output-dir", d.output, "--metadata-dir", d.metadata, "--termination-log", d.termination}
	if code := execute(args, func(string) string { return "" }, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if log := readFile(t, d.termination); !strings.Contains(log, "reading the input object") || !strings.Contains(log, "nowhere.yaml") {
		t.Errorf("termination log %q does not name the missing input", log)
	}
}

// TestRequestAPIMatchesTemplatePromise: a DynamoDBTableRequest's spec is
// a DynamoDBRequest's, so the same request gives the same Table. Only the
// Kratix Promise declares destinationSelector itself (Kratix does not add
// it, the router does).
func TestRequestAPIMatchesTemplatePromise(t *testing.T) {
	kratix := specSchema(t, "../../config/promises/dynamodb-kratix/promise.yaml")
	template := specSchema(t, "../../config/promises/dynamodb/promise.yaml")
	props, _ := kratix["properties"].(map[string]any)
	if _, ok := props["destinationSelector"]; !ok {
		t.Fatal("the Kratix Promise's request schema does not declare spec.destinationSelector")
	}
	delete(props, "destinationSelector")
	if !reflect.DeepEqual(kratix, template) {
		k, _ := sigsyaml.Marshal(kratix)
		w, _ := sigsyaml.Marshal(template)
		t.Errorf("request spec schemas differ:\nkratix:\n%s\ntemplate:\n%s", k, w)
	}
}

// specSchema is the openAPIV3Schema of spec in a Promise file's request CRD.
func specSchema(t *testing.T, path string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := sigsyaml.Unmarshal([]byte(readFile(t, path)), &p); err != nil {
		t.Fatal(err)
	}
	versions, _ := pipelinekit.Nested(p, "spec", "api", "spec", "versions").([]any)
	if len(versions) != 1 {
		t.Fatalf("%s: %d versions, want 1", path, len(versions))
	}
	spec, _ := pipelinekit.Nested(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec").(map[string]any)
	if spec == nil {
		t.Fatalf("%s: no spec schema", path)
	}
	return spec
}

// TestKratixPromise checks the Kratix-format Promise's shape: its kind and
// its one configure pipeline running this program's image.
func TestKratixPromise(t *testing.T) {
	var p map[string]any
	if err := sigsyaml.Unmarshal([]byte(readFile(t, "../../config/promises/dynamodb-kratix/promise.yaml")), &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fields []string
		want   string
	}{
		{[]string{"apiVersion"}, "platform.kratix.io/v1alpha1"},
		{[]string{"kind"}, "Promise"},
		{[]string{"metadata", "name"}, "dynamodb-kratix"},
		{[]string{"spec", "api", "spec", "names", "kind"}, "DynamoDBTableRequest"},
	} {
		if got := pipelinekit.NestedString(p, c.fields...); got != c.want {
			t.Errorf("%s is %q, want %q", strings.Join(c.fields, "."), got, c.want)
		}
	}
	configure, _ := pipelinekit.Nested(p, "spec", "workflows", "resource", "configure").([]any)
	if len(configure) != 1 {
		t.Fatalf("%d configure pipelines, want 1", len(configure))
	}
	pipeline := configure[0].(map[string]any)
	containers, _ := pipelinekit.Nested(pipeline, "spec", "containers").([]any)
	if pipelinekit.NestedString(pipeline, "metadata", "name") != "configure-table" || len(containers) != 1 ||
		pipelinekit.NestedString(containers[0].(map[string]any), "image") != "ghcr.io/switchyard-dev/dynamodb-pipeline:v0.1.0" {
		t.Errorf("configure pipeline is %v; want configure-table running ghcr.io/switchyard-dev/dynamodb-pipeline:v0.1.0", pipeline)
	}
}
