package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestChartIsCurrent fails when charts/switchyard differs from what
// `make chart` writes from config/: the chart has no source of its own.
func TestChartIsCurrent(t *testing.T) {
	root := testenv.RepoRoot()
	tmp := t.TempDir()
	if err := Write(root, tmp); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"crds", "templates"} {
		want := readDir(t, filepath.Join(tmp, dir))
		got := readDir(t, filepath.Join(root, "charts", "switchyard", dir))
		for name, content := range want {
			if got[name] != content {
				t.Errorf("charts/switchyard/%s/%s is stale: run make chart", dir, name)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("charts/switchyard/%s/%s has no source in config/: run make chart", dir, name)
			}
		}
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestChartInstalls lints the chart with Helm (--strict), renders it into
// a namespace of the user's choosing, and sends every object to a real API
// server as a server-side dry run: the chart installs, and its values land
// where they should.
func TestChartInstalls(t *testing.T) {
	helm, err := testenv.Helm()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(testenv.RepoRoot(), "charts", "switchyard")
	if out, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	const ns = "platform-routing"
	objs := helmTemplate(t, helm, chart, ns, "--include-crds",
		"--set", "image.repository=registry.example/switchyard-router", "--set", "image.tag=v9.9.9", "--set", "replicaCount=3")
	_, c := testenv.StartTestControlPlane(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		// The control plane has Switchyard's CRDs already; the API server
		// validates before it finds the name taken.
		if err := c.Create(ctx, o, client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetNamespace() != "" && o.GetNamespace() != ns {
			t.Errorf("%s %s in namespace %s, want the release's %s", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
		}
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example/switchyard-router:v9.9.9" {
			t.Errorf("image %q, want the values' repository and tag", img)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
			t.Errorf("replicas %v, want the values' 3", d.Spec.Replicas)
		}
		if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-election-namespace="+ns) {
			t.Errorf("args %v lack the release's leader election namespace", d.Spec.Template.Spec.Containers[0].Args)
		}
	}
	for _, want := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "Deployment"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("the chart renders no %s (it renders %v)", want, kinds)
		}
	}

	// The finalizer at admission's rights are opt-in: only with the value.
	const optIn = "switchyard-router-admission-policy"
	for _, o := range objs {
		if o.GetName() == optIn {
			t.Errorf("the chart renders %s %s by default; it is opt-in (finalizerAtAdmission.enabled)", o.GetKind(), optIn)
		}
	}
	var got []string
	for _, o := range helmTemplate(t, helm, chart, ns, "--set", "finalizerAtAdmission.enabled=true") {
		if o.GetName() != optIn {
			continue
		}
		got = append(got, o.GetKind())
		if err := c.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.ClusterRoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Subjects) != 1 || b.Subjects[0].Namespace != ns {
			t.Errorf("%s binds %+v, want the router's ServiceAccount in the release's namespace %s", optIn, b.Subjects, ns)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"ClusterRole", "ClusterRoleBinding"}) {
		t.Errorf("with finalizerAtAdmission.enabled=true the chart renders %v named %s, want its ClusterRole and ClusterRoleBinding", got, optIn)
	}
}

// helmTemplate renders the chart into namespace ns with args and returns
// its objects.
func helmTemplate(t *testing.T, helm, chart, ns string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	rendered, err := exec.Command(helm, append([]string{"template", "switchyard", chart, "--namespace", ns}, args...)...).Output()
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	file := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(file, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.ReadObjects(file)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
