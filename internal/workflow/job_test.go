package workflow

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func testPipeline(name string, containers ...v1alpha1.Container) v1alpha1.Pipeline {
	return v1alpha1.Pipeline{
		APIVersion: "platform.kratix.io/v1alpha1", Kind: "Pipeline",
		Metadata: v1alpha1.PipelineMetadata{Name: name},
		Spec:     v1alpha1.PipelineSpec{Containers: containers},
	}
}

func testRun() Run {
	custom := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	p := testPipeline("instance-configure",
		v1alpha1.Container{
			Name: "first", Image: "example.com/first:1", Command: []string{"/bin/first"}, Args: []string{"a"},
			Env: []corev1.EnvVar{
				{Name: "OWN", Value: "mine"},
				// Validate refuses this; Job must still not let it win.
				{Name: "KRATIX_OBJECT_NAME", Value: "spoofed"},
			},
			EnvFrom:      []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}},
		},
		v1alpha1.Container{Name: "second", Image: "example.com/second:1", Resources: &custom},
	)
	p.Metadata.Labels = map[string]string{"team": "a", RunLabel: "spoofed"}
	p.Metadata.Annotations = map[string]string{"note": "x", AttemptAnnotation: "99"}
	p.Spec.Volumes = rawVolumes(corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}})
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	return Run{
		Type: TypeResource, Action: ActionConfigure, Promise: "postgres",
		Object: Object{
			GVK:    schema.GroupVersionKind{Group: "db.example.com", Version: "v1", Kind: "Postgres"},
			Plural: "postgreses", Namespace: "team-a", Name: "orders", UID: "uid-1",
		},
		Pipeline: p, Index: 1, Pipelines: 3, Attempt: 2,
		ID: "run-1", Inputs: "inputs-1", Namespace: "team-a", Image: "example.com/router:v1",
		Owner: metav1.OwnerReference{APIVersion: "db.example.com/v1", Kind: "Postgres", Name: "orders", UID: "uid-1"},
	}
}

// effective is the value a container sees for name: the last occurrence
// wins, as the kubelet builds the environment.
func effective(c corev1.Container, name string) (string, bool) {
	v, ok := "", false
	for _, e := range c.Env {
		if e.Name == name {
			v, ok = e.Value, true
		}
	}
	return v, ok
}

func TestJobContainersOrderAndRouterSteps(t *testing.T) {
	r := testRun()
	j := Job(r)
	spec := j.Spec.Template.Spec
	var inits []string
	for _, c := range spec.InitContainers {
		inits = append(inits, c.Name)
	}
	if got, want := strings.Join(inits, ","), "reader,first,second"; got != want {
		t.Fatalf("initContainers = %s, want %s", got, want)
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "writer" {
		t.Fatalf("containers = %+v, want [writer]", spec.Containers)
	}
	for _, c := range []struct {
		c    corev1.Container
		verb string
	}{{spec.InitContainers[0], "read"}, {spec.Containers[0], "write"}} {
		if c.c.Image != r.Image || strings.Join(c.c.Args, " ") != "pipeline "+c.verb || len(c.c.Command) != 0 {
			t.Errorf("%s: image %q args %q command %q", c.c.Name, c.c.Image, c.c.Args, c.c.Command)
		}
	}
	first := spec.InitContainers[1]
	if first.Image != "example.com/first:1" || strings.Join(first.Command, " ") != "/bin/first" || strings.Join(first.Args, " ") != "a" {
		t.Errorf("first: image/command/args not passed through: %+v", first)
	}
	writer := spec.Containers[0]
	for name, path := range map[string]string{
		EnvJobName:      "metadata.labels['batch.kubernetes.io/job-name']",
		EnvJobUID:       "metadata.labels['batch.kubernetes.io/controller-uid']",
		EnvJobNamespace: "metadata.namespace",
	} {
		found := false
		for _, e := range writer.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == path {
				found = true
			}
		}
		if !found {
			t.Errorf("writer: no %s from %s", name, path)
		}
	}
}

func TestJobContractOnEveryContainer(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Run)
		want map[string]string
	}{
		{"namespaced resource", func(*Run) {}, map[string]string{
			"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_PROMISE_NAME": "postgres",
			"KRATIX_PIPELINE_NAME": "instance-configure", "KRATIX_OBJECT_KIND": "Postgres", "KRATIX_OBJECT_GROUP": "db.example.com",
			"KRATIX_OBJECT_VERSION": "v1", "KRATIX_OBJECT_NAME": "orders", "KRATIX_OBJECT_NAMESPACE": "team-a",
			"KRATIX_CRD_PLURAL": "postgreses", "KRATIX_CLUSTER_SCOPED": "false",
		}},
		{"promise delete", func(r *Run) {
			r.Type, r.Action = TypePromise, ActionDelete
			r.Object = Object{GVK: v1alpha1.GroupVersion.WithKind("Promise"), Plural: "promises", Name: "postgres", UID: "p-uid", ClusterScoped: true}
			r.Namespace = "switchyard-system"
		}, map[string]string{
			"KRATIX_WORKFLOW_TYPE": "promise", "KRATIX_WORKFLOW_ACTION": "delete", "KRATIX_PROMISE_NAME": "postgres",
			"KRATIX_PIPELINE_NAME": "instance-configure", "KRATIX_OBJECT_KIND": "Promise", "KRATIX_OBJECT_GROUP": v1alpha1.GroupVersion.Group,
			"KRATIX_OBJECT_VERSION": v1alpha1.GroupVersion.Version, "KRATIX_OBJECT_NAME": "postgres", "KRATIX_OBJECT_NAMESPACE": "",
			"KRATIX_CRD_PLURAL": "promises", "KRATIX_CLUSTER_SCOPED": "true",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRun()
			tt.edit(&r)
			spec := Job(r).Spec.Template.Spec
			all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
			for _, c := range all {
				for k, want := range tt.want {
					if got, ok := effective(c, k); !ok || got != want {
						t.Errorf("%s: %s = %q (set %v), want %q", c.Name, k, got, ok, want)
					}
				}
				mounts := map[string]string{}
				for _, m := range c.VolumeMounts {
					mounts[m.MountPath] = m.Name
				}
				for path, vol := range map[string]string{InputDir: "kratix-input", OutputDir: "kratix-output", MetadataDir: "kratix-metadata"} {
					if mounts[path] != vol {
						t.Errorf("%s: %s mounted from %q, want %q", c.Name, path, mounts[path], vol)
					}
				}
				sc := c.SecurityContext
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 ||
					sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
					sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
					sc.Privileged != nil && *sc.Privileged {
					t.Errorf("%s: security context not restricted: %+v", c.Name, sc)
				}
				res := c.Resources
				want := map[string]string{"rc": "100m", "rm": "128Mi", "lc": "200m", "lm": "256Mi"}
				if c.Name == "second" {
					want = map[string]string{"rc": "1", "rm": "1Gi", "lc": "0", "lm": "0"}
				}
				got := map[string]string{
					"rc": qty(res.Requests, corev1.ResourceCPU), "rm": qty(res.Requests, corev1.ResourceMemory),
					"lc": qty(res.Limits, corev1.ResourceCPU), "lm": qty(res.Limits, corev1.ResourceMemory),
				}
				for k := range want {
					if got[k] != want[k] {
						t.Errorf("%s: resources %v, want %v", c.Name, got, want)
						break
					}
				}
			}
			first := spec.InitContainers[1]
			if v, ok := effective(first, "OWN"); !ok || v != "mine" {
				t.Errorf("first: own env OWN = %q, %v; want mine", v, ok)
			}
			if len(first.EnvFrom) != 1 || first.EnvFrom[0].ConfigMapRef == nil || first.EnvFrom[0].ConfigMapRef.Name != "cfg" {
				t.Errorf("first: envFrom not passed through: %+v", first.EnvFrom)
			}
			found := false
			for _, m := range first.VolumeMounts {
				found = found || m.Name == "creds" && m.MountPath == "/creds"
			}
			if !found {
				t.Errorf("first: own volumeMount missing: %+v", first.VolumeMounts)
			}
		})
	}
}

func qty(l corev1.ResourceList, n corev1.ResourceName) string {
	q, ok := l[n]
	if !ok {
		return "0"
	}
	return q.String()
}

func TestJobPodAndMetadata(t *testing.T) {
	r := testRun()
	j := Job(r)
	if j.Name != r.JobName() || j.Namespace != "team-a" {
		t.Errorf("name %s/%s, want team-a/%s", j.Namespace, j.Name, r.JobName())
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 {
		t.Errorf("backoffLimit = %v, want 0", j.Spec.BackoffLimit)
	}
	if len(j.OwnerReferences) != 1 || j.OwnerReferences[0].UID != "uid-1" {
		t.Errorf("ownerReferences = %+v", j.OwnerReferences)
	}
	spec := j.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %s", spec.RestartPolicy)
	}
	if want := ServiceAccountName("postgres", TypeResource, ActionConfigure, "instance-configure"); spec.ServiceAccountName != want {
		t.Errorf("serviceAccountName = %s, want %s", spec.ServiceAccountName, want)
	}
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v, want true", spec.AutomountServiceAccountToken)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	if len(spec.ImagePullSecrets) != 1 || spec.ImagePullSecrets[0].Name != "pull" {
		t.Errorf("imagePullSecrets = %+v", spec.ImagePullSecrets)
	}
	vols := map[string]corev1.VolumeSource{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v.VolumeSource
	}
	if len(vols) != 4 || vols["creds"].Secret == nil || vols["creds"].Secret.SecretName != "creds" {
		t.Errorf("volumes = %+v", spec.Volumes)
	}
	for _, n := range reservedVolumes {
		if vols[n].EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir: %+v", n, vols[n])
		}
	}
	wantLabels := map[string]string{
		ManagedByLabel: ManagedBy, OwnerUIDLabel: "uid-1", RunLabel: "run-1",
		WorkflowTypeLabel: "resource", WorkflowActionLabel: "configure", PromiseNameLabel: "postgres",
		PipelineNameLabel: "instance-configure", ResourceNameLabel: "orders", "team": "a",
	}
	wantAnnotations := map[string]string{
		PipelineIndexAnnotation: "1", AttemptAnnotation: "2", InputsAnnotation: "inputs-1", PipelinesAnnotation: "3", "note": "x",
	}
	for where, got := range map[string][2]map[string]string{
		"job": {j.Labels, j.Annotations}, "pod template": {j.Spec.Template.Labels, j.Spec.Template.Annotations},
	} {
		for k, v := range wantLabels {
			if got[0][k] != v {
				t.Errorf("%s label %s = %q, want %q", where, k, got[0][k], v)
			}
		}
		for k, v := range wantAnnotations {
			if got[1][k] != v {
				t.Errorf("%s annotation %s = %q, want %q", where, k, got[1][k], v)
			}
		}
		for k, v := range got[0] {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s label %s=%q: %v", where, k, v, errs)
			}
		}
	}
	// The Job reads back as the attempt it was built for.
	a, ok := AttemptOf(j)
	if !ok || a.Run != "run-1" || a.Inputs != "inputs-1" || a.Index != 1 || a.Number != 2 || a.Pipelines != 3 || !a.Finished.IsZero() {
		t.Errorf("AttemptOf(Job) = %+v, %v", a, ok)
	}
}

func TestJobName(t *testing.T) {
	long := strings.Repeat("abcdefghij", 25) // 250 characters
	base := testRun()
	runs := map[string]Run{"base": base}
	edit := func(name string, f func(*Run)) {
		r := testRun()
		f(&r)
		runs[name] = r
	}
	edit("run id", func(r *Run) { r.ID = "run-2" })
	edit("attempt", func(r *Run) { r.Attempt = 3 })
	edit("pipeline", func(r *Run) { r.Pipeline.Metadata.Name = "instance-configure2" })
	edit("object uid", func(r *Run) { r.Object.UID = "uid-2" })
	edit("long", func(r *Run) {
		r.Promise, r.Object.Name, r.Pipeline.Metadata.Name = long, long, strings.Repeat("p", 40)
	})
	edit("long other uid", func(r *Run) {
		r.Promise, r.Object.Name, r.Pipeline.Metadata.Name = long, long, strings.Repeat("p", 40)
		r.Object.UID = "uid-2"
	})
	edit("long dashes at cuts", func(r *Run) {
		r.Promise, r.Object.Name = "a-------------b", "o-----------------x"
	})
	edit("dotted names", func(r *Run) {
		r.Promise, r.Object.Name = "postgres.db.example.com", "orders.v2"
	})
	edit("long dotted names", func(r *Run) {
		r.Promise, r.Object.Name = "postgres.db.example.com", "orders.v2.long.name.with.dots"
	})
	seen := map[string]string{}
	for what, r := range runs {
		n := r.JobName()
		if len(n) > 63 {
			t.Errorf("%s: JobName %q is %d characters", what, n, len(n))
		}
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			t.Errorf("%s: JobName %q: %v", what, n, errs)
		}
		if n != r.JobName() {
			t.Errorf("%s: JobName not stable", what)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share JobName %q", what, other, n)
		}
		seen[n] = what
	}
	// Stable across separately built, equal Runs.
	if a, b := testRun(), testRun(); a.JobName() != b.JobName() {
		t.Error("JobName differs for equal Runs")
	}
}

func TestServiceAccountName(t *testing.T) {
	long := strings.Repeat("abcdefghij", 25)
	names := map[string]bool{}
	for _, tt := range []struct{ promise, typ, action, pipeline string }{
		{"postgres", TypeResource, ActionConfigure, "instance"},
		{"postgres", TypeResource, ActionDelete, "instance"},
		{"postgres", TypePromise, ActionConfigure, "instance"},
		{long, TypeResource, ActionConfigure, strings.Repeat("p", 40)},
		{long + "x", TypeResource, ActionConfigure, strings.Repeat("p", 40)},
		{long, TypePromise, ActionDelete, strings.Repeat("p", 40)},
		{"postgres.db.example.com", TypeResource, ActionConfigure, "instance"},
		{strings.Repeat("a", 49) + "-" + strings.Repeat("b", 20), TypeResource, ActionConfigure, "p"},
	} {
		n := ServiceAccountName(tt.promise, tt.typ, tt.action, tt.pipeline)
		if len(n) > 63 {
			t.Errorf("%v: %q is %d characters", tt, n, len(n))
		}
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%v: %q is not a valid ServiceAccount name: %v", tt, n, errs)
		}
		if n != ServiceAccountName(tt.promise, tt.typ, tt.action, tt.pipeline) {
			t.Errorf("%v: not stable", tt)
		}
		if names[n] {
			t.Errorf("%v: %q used twice", tt, n)
		}
		names[n] = true
	}
	if got := ServiceAccountName("postgres", TypeResource, ActionConfigure, "instance"); got != "postgres-resource-configure-instance" {
		t.Errorf("short name = %q, want Kratix's postgres-resource-configure-instance", got)
	}
}

func TestValidate(t *testing.T) {
	ok := func() v1alpha1.Pipeline {
		p := testPipeline("configure", v1alpha1.Container{
			Name: "main", Image: "example.com/main:1",
			Env:          []corev1.EnvVar{{Name: "MY_VAR", Value: "x"}, {Name: "NOT_KRATIX_X", Value: "y"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/config"}, {Name: "cfg2", MountPath: "/kratixish"}},
		}, v1alpha1.Container{Name: "second", Image: "example.com/second:1"})
		p.Spec.Volumes = rawVolumes(
			corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
			corev1.Volume{Name: "cfg2", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		)
		return p
	}
	tests := []struct {
		name string
		edit func([]v1alpha1.Pipeline) []v1alpha1.Pipeline
		want string // "" for no error; else a substring of it
	}{
		{"normal", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline { return ps }, ""},
		{"two pipelines", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			q := ok()
			q.Metadata.Name = "other"
			return append(ps, q)
		}, ""},
		{"none", func([]v1alpha1.Pipeline) []v1alpha1.Pipeline { return nil }, ""},
		{"duplicate pipeline", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline { return append(ps, ok()) }, `wf[1]: pipeline name "configure" is used twice`},
		{"reserved volume", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Volumes = append(ps[0].Spec.Volumes, rawVolumes(corev1.Volume{Name: "kratix-output"})...)
			return ps
		}, `"kratix-output" is reserved`},
		{"unknown volume field", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Volumes = append(ps[0].Spec.Volumes, runtime.RawExtension{Raw: []byte(`{"name":"x","emptyDir":{},"bogus":1}`)})
			return ps
		}, `wf[0].spec.volumes: [2]: json: unknown field "bogus"`},
		{"nameless volume", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Volumes = append(ps[0].Spec.Volumes, runtime.RawExtension{Raw: []byte(`{"emptyDir":{}}`)})
			return ps
		}, `a volume needs a name`},
		{"reader container", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[1].Name = "reader"
			return ps
		}, `wf[0].spec.containers[1]: container name "reader"`},
		{"writer container", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[0].Name = "writer"
			return ps
		}, `container name "writer"`},
		{"duplicate container", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[1].Name = "main"
			return ps
		}, `container name "main"`},
		{"mount at /kratix", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[0].VolumeMounts[0].MountPath = "/kratix"
			return ps
		}, "/kratix is the contract's"},
		{"mount under /kratix", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/kratix/output/x"}}
			return ps
		}, "/kratix/output/x is the contract's"},
		{"mount at /kratix/", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[0].VolumeMounts[0].MountPath = "/kratix/"
			return ps
		}, "is the contract's"},
		{"mount at unclean //kratix/output", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[0].VolumeMounts[0].MountPath = "//kratix/output"
			return ps
		}, "is the contract's"},
		{"mount at unclean /./kratix", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[0].VolumeMounts[0].MountPath = "/./kratix"
			return ps
		}, "is the contract's"},
		{"KRATIX env", func(ps []v1alpha1.Pipeline) []v1alpha1.Pipeline {
			ps[0].Spec.Containers[1].Env = []corev1.EnvVar{{Name: "KRATIX_OBJECT_NAME", Value: "x"}}
			return ps
		}, "wf[0].spec.containers[1].env: KRATIX_OBJECT_NAME is set by the router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate("wf", tt.edit([]v1alpha1.Pipeline{ok()}))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want no error", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate: no error, want one with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate: %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestLabelValuesValid: Promise and object names may be DNS subdomains of
// up to 253 characters; every label the router sets must still be a valid
// label value, or the API server refuses the Job.
func TestLabelValuesValid(t *testing.T) {
	for _, tt := range []struct{ promise, object string }{
		{"postgres", "orders"},
		{"postgres.db.example.com", "orders.v2"},
		{strings.Repeat("p", 63), strings.Repeat("o", 63)},
		{strings.Repeat("p", 64), strings.Repeat("o", 64)},
		{strings.Repeat("p.", 100) + "p", strings.Repeat("o", 253)},
	} {
		r := testRun()
		r.Promise, r.Object.Name = tt.promise, tt.object
		r.Pipeline.Metadata.Labels[PromiseNameLabel] = "spoofed"
		r.Pipeline.Metadata.Labels[ResourceNameLabel] = "spoofed"
		r.Pipeline.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: []v1alpha1.PipelinePermission{perm("other", []string{"get"}, "", "pods"), perm("*", []string{"list"}, "", "nodes")}}
		j := Job(r)
		check := func(what string, labels map[string]string) {
			for k, v := range labels {
				if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
					t.Errorf("promise %.20s… object %.20s…: %s label %s=%q: %v", tt.promise, tt.object, what, k, v, errs)
				}
			}
		}
		check("Job", j.Labels)
		check("Pod template", j.Spec.Template.Labels)
		for _, o := range Access(r) {
			check(fmt.Sprintf("%T", o), o.GetLabels())
		}
		if len(tt.promise) <= 63 && j.Labels[PromiseNameLabel] != tt.promise {
			t.Errorf("%s label = %q, want %q", PromiseNameLabel, j.Labels[PromiseNameLabel], tt.promise)
		}
		if len(tt.object) <= 63 && j.Labels[ResourceNameLabel] != tt.object {
			t.Errorf("%s label = %q, want %q", ResourceNameLabel, j.Labels[ResourceNameLabel], tt.object)
		}
		for _, k := range []string{PromiseNameLabel, ResourceNameLabel} {
			if j.Labels[k] == "spoofed" {
				t.Errorf("the pipeline's own labels set %s", k)
			}
		}
	}
}

// rawVolumes encodes volumes as a Promise stores them.
func rawVolumes(vs ...corev1.Volume) []runtime.RawExtension {
	out := make([]runtime.RawExtension, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out[i] = runtime.RawExtension{Raw: b}
	}
	return out
}
