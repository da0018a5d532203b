package workflow

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func TestReferences(t *testing.T) {
	p := testPipeline("refs", v1alpha1.Container{Name: "main", Image: "example.com/main:1",
		Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "token"}, Key: "k"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "k"}}},
			{Name: "C", Value: "plain"},
		},
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "token"}}}},
	})
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	p.Spec.Volumes = rawVolumes(
		corev1.Volume{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "certs"}}},
		corev1.Volume{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}}}}}}},
	)
	got, err := References(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Refs{Secrets: []string{"certs", "pull", "token"}, ConfigMaps: []string{"ca", "settings"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("References = %+v, want %+v", got, want)
	}
}

func TestVolumeKinds(t *testing.T) {
	for _, tt := range []struct {
		raw string
		ok  bool
	}{
		{`{"name":"a","emptyDir":{}}`, true},
		{`{"name":"a","configMap":{"name":"c"}}`, true},
		{`{"name":"a","downwardAPI":{"items":[]}}`, true},
		{`{"name":"a","hostPath":{"path":"/"}}`, false},
		{`{"name":"a","persistentVolumeClaim":{"claimName":"c"}}`, false},
		{`{"name":"a","projected":{"sources":[{"serviceAccountToken":{"path":"t"}}]}}`, false},
		{`{"name":"a","projected":{"sources":[{"secret":{"name":"s"}}]}}`, true},
	} {
		p := testPipeline("vols", v1alpha1.Container{Name: "main", Image: "example.com/main:1"})
		p.Spec.Volumes = []runtime.RawExtension{{Raw: []byte(tt.raw)}}
		err := Validate("wf", []v1alpha1.Pipeline{p})
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tt.raw, err, tt.ok)
		}
	}
}

func TestCheckPermissions(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(*Run)
		perms []v1alpha1.PipelinePermission
		want  string
	}{
		{"none", func(*Run) {}, nil, ""},
		{"the request's namespace", func(r *Run) { r.Namespace = "switchyard-system" }, []v1alpha1.PipelinePermission{perm("", []string{"get"}, "", "secrets")}, ""},
		{"another namespace and all", func(r *Run) { r.Namespace = "switchyard-system" },
			[]v1alpha1.PipelinePermission{perm("other", []string{"get"}, "", "secrets"), perm("*", []string{"list"}, "", "namespaces")}, ""},
		{"the router's namespace by name", func(r *Run) { r.Namespace = "switchyard-system" },
			[]v1alpha1.PipelinePermission{perm("switchyard-system", []string{"get"}, "", "secrets")}, "permissions[0] applies in namespace switchyard-system"},
		{"a promise workflow without a namespace", func(r *Run) {
			r.Namespace = "switchyard-system"
			r.Object = Object{GVK: v1alpha1.GroupVersion.WithKind("Promise"), Plural: "promises", Name: "p", UID: "u", ClusterScoped: true}
		}, []v1alpha1.PipelinePermission{perm("", []string{"get"}, "", "secrets")}, "applies in namespace switchyard-system"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := testRun()
			tt.edit(&r)
			if tt.perms != nil {
				r.Pipeline.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: tt.perms}
			}
			err := CheckPermissions(r)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckPermissions = %v, want %q", err, tt.want)
			}
		})
	}
}
