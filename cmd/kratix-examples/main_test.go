package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
)

// run is one run of a subcommand on temporary directories, as a
// container would run it with the paths given by the environment.
type run struct {
	root     string
	code     int
	stderr   string
	manifest map[string]string // file name in the output directory -> content
	metadata map[string]string // file name in the metadata directory -> content
}

func runStep(t *testing.T, step, object string, env map[string]string) run {
	t.Helper()
	root := t.TempDir()
	input := filepath.Join(root, "object.yaml")
	if err := os.WriteFile(input, []byte(object), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		pipelinekit.InputEnv: input, pipelinekit.OutputDirEnv: filepath.Join(root, "output"),
		pipelinekit.MetadataDirEnv: filepath.Join(root, "metadata"), pipelinekit.TerminationLogEnv: filepath.Join(root, "termination-log"),
		"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_WORKFLOW_ACTION": "configure",
	}
	for k, v := range env {
		vars[k] = v
	}
	var out, errOut bytes.Buffer
	r := run{root: root}
	var args []string
	if step != "" {
		args = []string{step}
	}
	r.code = execute(args, func(k string) string { return vars[k] }, &out, &errOut)
	r.stderr = errOut.String()
	r.manifest, r.metadata = readDir(t, filepath.Join(root, "output")), readDir(t, filepath.Join(root, "metadata"))
	return r
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

const webRequest = `apiVersion: examples.switchyard.dev/v1alpha1
kind: App
metadata:
  name: web
  namespace: team-a
  labels: {team: a, cost-centre: "42", app.kubernetes.io/part-of: shop}
spec:
  replicas: 3
  tier: gold
  owner: alice
`

const examplesPromise = `apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata: {name: app}
spec: {}
`

// TestSteps runs each subcommand on a request and checks everything it
// writes, byte for byte.
func TestSteps(t *testing.T) {
	tests := []struct {
		name, step, object string
		env                map[string]string
		manifest           map[string]string
		metadata           map[string]string
	}{
		{
			name: "namespace named after the request, selected by tier", step: "namespace", object: webRequest,
			manifest: map[string]string{"namespace.yaml": `apiVersion: v1
kind: Namespace
metadata:
  labels:
    kratix-examples.switchyard.dev/step: namespace
  name: web
`},
			metadata: map[string]string{
				"destination-selectors.yaml": "- matchLabels:\n    tier: gold\n",
				"status.yaml":                "message: namespace web requested\nnamespace: web\ntier: gold\n",
			},
		},
		{
			name: "namespace from spec.name, no tier", step: "namespace",
			object: "metadata: {name: web, namespace: team-a}\nspec: {name: team-a-web}\n",
			manifest: map[string]string{"namespace.yaml": `apiVersion: v1
kind: Namespace
metadata:
  labels:
    kratix-examples.switchyard.dev/step: namespace
  name: team-a-web
`},
			metadata: map[string]string{"status.yaml": "message: namespace team-a-web requested\nnamespace: team-a-web\n"},
		},
		{
			name: "configmap of the spec", step: "configmap", object: webRequest,
			manifest: map[string]string{"configmap.yaml": `apiVersion: v1
data:
  owner: alice
  replicas: "3"
  tier: gold
kind: ConfigMap
metadata:
  labels:
    kratix-examples.switchyard.dev/step: configmap
  name: web
  namespace: default
`},
			metadata: map[string]string{"status.yaml": "configMap: web\nmessage: configmap default/web requested with 3 keys\n"},
		},
		{
			name: "configmap of a nested spec", step: "configmap",
			object: "metadata: {name: db}\nspec: {sizes: [1, 2], limits: {cpu: \"1\"}}\n",
			manifest: map[string]string{"configmap.yaml": `apiVersion: v1
data:
  limits: '{"cpu":"1"}'
  sizes: '[1,2]'
kind: ConfigMap
metadata:
  labels:
    kratix-examples.switchyard.dev/step: configmap
  name: db
  namespace: default
`},
			metadata: map[string]string{"status.yaml": "configMap: db\nmessage: configmap default/db requested with 2 keys\n"},
		},
		{
			name: "labels in a ConfigMap of their own", step: "labels", object: webRequest,
			manifest: map[string]string{"labels.yaml": `apiVersion: v1
data:
  request: team-a/web
kind: ConfigMap
metadata:
  labels:
    app.kubernetes.io/part-of: shop
    cost-centre: "42"
    kratix-examples.switchyard.dev/step: labels
    team: a
  name: web-labels
  namespace: default
`},
			metadata: map[string]string{"status.yaml": "labelsConfigMap: web-labels\nmessage: 3 labels of team-a/web copied to configmap default/web-labels\n"},
		},
		{
			name: "deployment of the default image", step: "deployment", object: webRequest,
			manifest: map[string]string{"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    kratix-examples.switchyard.dev/step: deployment
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
        - image: nginxinc/nginx-unprivileged:1.27-alpine
          name: web
          ports:
            - containerPort: 8080
`},
			metadata: map[string]string{"status.yaml": "deployment: web\nimage: nginxinc/nginx-unprivileged:1.27-alpine\nmessage: deployment default/web requested with image nginxinc/nginx-unprivileged:1.27-alpine\n"},
		},
		{
			name: "deployment of spec.image", step: "deployment",
			object:   "metadata: {name: api}\nspec: {image: registry.example/api:v2}\n",
			manifest: nil, // checked by the status alone
			metadata: map[string]string{"status.yaml": "deployment: api\nimage: registry.example/api:v2\nmessage: deployment default/api requested with image registry.example/api:v2\n"},
		},
		{
			name: "dependencies of the Promise", step: "dependencies", object: examplesPromise,
			env: map[string]string{"KRATIX_WORKFLOW_TYPE": "promise"},
			manifest: map[string]string{"dependencies.yaml": `apiVersion: v1
kind: Namespace
metadata:
  labels:
    kratix-examples.switchyard.dev/step: dependencies
  name: app-deps
---
apiVersion: v1
data:
  promise: app
kind: ConfigMap
metadata:
  labels:
    kratix-examples.switchyard.dev/step: dependencies
  name: promise-info
  namespace: app-deps
`},
			metadata: map[string]string{"status.yaml": "message: 'dependencies of promise app written: namespace app-deps'\n"},
		},
		{
			name: "scripted: data, and a retry while retryUntil is ahead", step: "scripted",
			object: "metadata: {name: wf, namespace: team-a, generation: 4}\nspec: {data: {colour: blue}, retryUntil: '2999-01-01T00:00:00Z'}\n",
			manifest: map[string]string{"scripted.yaml": `apiVersion: v1
data:
  colour: blue
kind: ConfigMap
metadata:
  labels:
    kratix-examples.switchyard.dev/step: scripted
  name: wf-scripted
  namespace: default
`},
			metadata: map[string]string{
				"workflow-control.yaml": "retryAfter: 2s\n",
				"status.yaml":           "generation: 4\nmessage: configmap default/wf-scripted requested\n",
			},
		},
		{
			name: "scripted: no retry once retryUntil passed", step: "scripted",
			object:   "metadata: {name: wf, namespace: team-a, generation: 5}\nspec: {retryUntil: '2000-01-01T00:00:00Z'}\n",
			metadata: map[string]string{"status.yaml": "generation: 5\nmessage: configmap default/wf-scripted requested\n"},
		},
		{
			name: "scripted: fails only on the action asked", step: "scripted", env: map[string]string{"KRATIX_WORKFLOW_ACTION": "configure"},
			object:   "metadata: {name: wf, namespace: team-a, generation: 1}\nspec: {failOn: delete, failMessage: boom}\n",
			metadata: map[string]string{"status.yaml": "generation: 1\nmessage: configmap default/wf-scripted requested\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStep(t, tt.step, tt.object, tt.env)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if tt.manifest != nil {
				compareFiles(t, "output", r.manifest, tt.manifest)
			}
			compareFiles(t, "metadata", r.metadata, tt.metadata)
		})
	}
}

func compareFiles(t *testing.T, dir string, got, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s/%s:\n got %q\nwant %q", dir, name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s written, want no such file", dir, name)
		}
	}
}

// TestDeleteWritesNothing: every step only configures.
func TestDeleteWritesNothing(t *testing.T) {
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := runStep(t, s.name, webRequest, map[string]string{"KRATIX_WORKFLOW_TYPE": s.workflow, "KRATIX_WORKFLOW_ACTION": "delete"})
			if r.code != 0 || len(r.manifest)+len(r.metadata) != 0 {
				t.Errorf("exit %d, wrote %v %v; want 0 and nothing (%s)", r.code, r.manifest, r.metadata, r.stderr)
			}
		})
	}
}

// TestErrors checks that a bad run exits 1, says why on stderr and in the
// termination log, and writes nothing.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, step, object string
		env                map[string]string
		want               string
	}{
		{"name not a DNS label", "namespace", "metadata: {name: Web_1}\n", nil, `metadata.name "Web_1" cannot name the objects`},
		{"spec.name not a string", "configmap", "metadata: {name: web}\nspec: {name: 7}\n", nil, "spec.name is a int; want a string"},
		{"tier not a string", "namespace", "metadata: {name: web}\nspec: {tier: [gold]}\n", nil, "spec.tier is a []interface {}; want a string"},
		{"spec key not a ConfigMap key", "configmap", "metadata: {name: web}\nspec: {\"a b\": x}\n", nil, "spec.a b cannot be a ConfigMap key"},
		{"label not a string", "labels", "metadata: {name: web, labels: {n: 1}}\n", nil, "metadata.labels.n is a int; want a string"},
		{"Promise without a name", "dependencies", "kind: Promise\n", map[string]string{"KRATIX_WORKFLOW_TYPE": "promise"}, "metadata.name of the Promise is not set"},
		{"resource step in a promise workflow", "deployment", webRequest, map[string]string{"KRATIX_WORKFLOW_TYPE": "promise"}, `KRATIX_WORKFLOW_TYPE is "promise": this program runs as a resource workflow`},
		{"promise step in a resource workflow", "dependencies", examplesPromise, nil, `KRATIX_WORKFLOW_TYPE is "resource": this program runs as a promise workflow`},
		{"unknown action", "configmap", webRequest, map[string]string{"KRATIX_WORKFLOW_ACTION": "update"}, `KRATIX_WORKFLOW_ACTION is "update"`},
		{"not YAML", "labels", "metadata: [", nil, "is not YAML"},
		{"unknown step", "bucket", webRequest, nil, `unknown command "bucket"`},
		{"no step", "", webRequest, nil, "name a step: namespace, configmap, labels, deployment, dependencies, scripted"},
		{"scripted failure on configure", "scripted", "metadata: {name: wf}\nspec: {failOn: configure, failMessage: quota exceeded}\n", nil, "quota exceeded"},
		{"scripted failure on delete", "scripted", "metadata: {name: wf}\nspec: {failOn: delete, failMessage: backup not taken}\n", map[string]string{"KRATIX_WORKFLOW_ACTION": "delete"}, "backup not taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStep(t, tt.step, tt.object, tt.env)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1", r.code)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tt.want)
			}
			log, _ := os.ReadFile(filepath.Join(r.root, "termination-log"))
			if !strings.Contains(string(log), tt.want) {
				t.Errorf("termination log %q does not say %q", log, tt.want)
			}
			if len(r.manifest)+len(r.metadata) != 0 {
				t.Errorf("wrote %v %v on failure", r.manifest, r.metadata)
			}
		})
	}
}

// TestPipelineOfSteps runs namespace then configmap on one /kratix, as two
// containers of one pipeline: the status holds both steps' fields, the
// second's message last.
func TestPipelineOfSteps(t *testing.T) {
	root := t.TempDir()
	input := filepath.Join(root, "object.yaml")
	if err := os.WriteFile(input, []byte(webRequest), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--input", input, "--output-dir", filepath.Join(root, "output"), "--metadata-dir", filepath.Join(root, "metadata"), "--termination-log", filepath.Join(root, "log")}
	for _, step := range []string{"namespace", "configmap"} {
		var out, errOut bytes.Buffer
		if code := execute(append([]string{step}, flags...), func(string) string { return "" }, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", step, code, errOut.String())
		}
	}
	status, _ := os.ReadFile(filepath.Join(root, "metadata", "status.yaml"))
	want := "configMap: web\nmessage: configmap default/web requested with 3 keys\nnamespace: web\ntier: gold\n"
	if string(status) != want {
		t.Errorf("status.yaml:\n got %q\nwant %q", status, want)
	}
	if files := readDir(t, filepath.Join(root, "output")); len(files) != 2 {
		t.Errorf("output holds %d files, want namespace.yaml and configmap.yaml", len(files))
	}
}
