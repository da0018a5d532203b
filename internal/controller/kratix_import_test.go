package controller

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// kratixSpec decodes a Kratix Promise spec written in YAML as the API
// server would hand it to the router.
func kratixSpec(t *testing.T, spec string) *kratixv1alpha1.Promise {
	t.Helper()
	b, err := yaml.YAMLToJSON([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	k := &kratixv1alpha1.Promise{}
	if err := k.Spec.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return k
}

const pipelineYAML = `
      - apiVersion: platform.kratix.io/v1alpha1
        kind: Pipeline
        metadata: {name: instance-configure, labels: {team: a}}
        spec:
          containers:
            - name: first
              image: example.com/first:v1
              args: ["one"]
              env: [{name: A, value: b}]
              volumeMounts: [{name: cache, mountPath: /cache}]
              resources: {limits: {cpu: 500m}}
          volumes: [{name: cache, emptyDir: {}}]
          rbac:
            permissions:
              - apiGroups: [""]
                resources: [configmaps]
                verbs: [get]
                resourceNamespace: "*"
`

func TestUnsupportedFields(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{name: "empty", spec: `{}`},
		{name: "every supported field", spec: `
api: {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: a}, spec: {anything: [1]}}
dependencies: [{apiVersion: v1, kind: Namespace, metadata: {name: a}, whatever: {x: 1}}]
destinationSelectors: [{matchLabels: {env: dev}}]
workflows:
  resource:
    configure:` + pipelineYAML + `
    delete:` + pipelineYAML + `
  promise:
    configure:` + pipelineYAML},
		{name: "several at once, at every depth", spec: `
requiredPromises: [{name: postgres, version: v1}]
destinationSelectors: [{matchLabels: {env: dev}, matchExpressions: [{key: a, operator: In, values: [b]}], matchFields: []}]
workflows:
  config: {pipelineNamespace: pipelines}
  resource:
    configure:
      - apiVersion: platform.kratix.io/v1alpha1
        kind: Pipeline
        metadata: {name: a, namespace: pipelines}
        spec:
          rbac: {serviceAccount: mine, permissions: [{verbs: [get], resources: [pods], apiGroups: [""], resourceNamespace: x}]}
          tolerations: [{key: a}]
          jobOptions: {backoffLimit: 2}
          containers:
            - {name: a, image: a}
            - {name: b, image: b, securityContext: {runAsUser: 0}}
  promise:
    delete:
      - apiVersion: platform.kratix.io/v1alpha1
        kind: Pipeline
        metadata: {name: b}
        spec:
          nodeSelector: {a: b}
          restartPolicy: Never
          containers: [{name: c, image: c, volumeMounts: [{name: v, mountPath: /v, bogus: 1}]}]
          volumes: [{name: v, emptyDir: {}}, {name: w, configMap: {name: w, optional: true, mystery: x}}]
`, want: []string{
			"spec.destinationSelectors[0].matchFields",
			"spec.requiredPromises",
			"spec.workflows.config",
			"spec.workflows.promise.delete[0].spec.containers[0].volumeMounts[0].bogus",
			"spec.workflows.promise.delete[0].spec.nodeSelector",
			"spec.workflows.promise.delete[0].spec.restartPolicy",
			"spec.workflows.promise.delete[0].spec.volumes[1].configMap.mystery",
			"spec.workflows.resource.configure[0].metadata.namespace",
			"spec.workflows.resource.configure[0].spec.containers[1].securityContext",
			"spec.workflows.resource.configure[0].spec.jobOptions",
			"spec.workflows.resource.configure[0].spec.rbac.serviceAccount",
			"spec.workflows.resource.configure[0].spec.tolerations",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnsupportedFields(kratixSpec(t, tt.spec).Spec.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestImportedSpec(t *testing.T) {
	api := `api: {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: a}}`
	tests := []struct {
		name    string
		spec    string
		check   func(*testing.T, v1alpha1.PromiseSpec)
		wantErr string
	}{
		{name: "no api", spec: `dependencies: [{apiVersion: v1, kind: Namespace, metadata: {name: a}}]`, wantErr: errNoAPI.Error()},
		{name: "a value of the wrong type", spec: api + "\nworkflows: {resource: {configure: [{kind: Pipeline, metadata: {name: 3}}]}}",
			wantErr: "spec.workflows: json: cannot unmarshal number"},
		{name: "workflows without pipelines are none", spec: api + "\nworkflows: {resource: {configure: []}, promise: {}}", check: func(t *testing.T, s v1alpha1.PromiseSpec) {
			if s.Workflows != nil {
				t.Errorf("workflows %+v, want nil", s.Workflows)
			}
		}},
		{name: "each selector becomes a label selector", spec: api + "\ndestinationSelectors: [{matchLabels: {env: dev}}, {matchLabels: {zone: a, tier: b}}, {matchExpressions: [{key: p, operator: In, values: [x1, y1]}]}]",
			check: func(t *testing.T, s v1alpha1.PromiseSpec) {
				want := []metav1.LabelSelector{{MatchLabels: map[string]string{"env": "dev"}}, {MatchLabels: map[string]string{"zone": "a", "tier": "b"}},
					{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "p", Operator: metav1.LabelSelectorOpIn, Values: []string{"x1", "y1"}}}}}
				if !reflect.DeepEqual(s.DestinationSelectors, want) {
					t.Errorf("selectors %+v, want %+v", s.DestinationSelectors, want)
				}
			}},
		{name: "api, dependencies and workflows carried over", spec: api + "\ndependencies: [{apiVersion: v1, kind: Namespace, metadata: {name: a}}]\nworkflows:\n  resource:\n    configure:" + pipelineYAML,
			check: func(t *testing.T, s v1alpha1.PromiseSpec) {
				if !strings.Contains(string(s.API.Raw), `"CustomResourceDefinition"`) || len(s.Dependencies) != 1 || !strings.Contains(string(s.Dependencies[0].Raw), `"Namespace"`) {
					t.Errorf("api %s, dependencies %v", s.API.Raw, s.Dependencies)
				}
				if s.Workflows == nil || s.Workflows.Resource == nil || len(s.Workflows.Resource.Configure) != 1 {
					t.Fatalf("workflows %+v", s.Workflows)
				}
				p := s.Workflows.Resource.Configure[0]
				if p.Metadata.Name != "instance-configure" || p.Spec.Containers[0].Args[0] != "one" || p.Spec.RBAC.Permissions[0].ResourceNamespace != "*" ||
					p.Spec.RBAC.Permissions[0].Verbs[0] != "get" || !strings.Contains(string(p.Spec.Volumes[0].Raw), `"emptyDir"`) {
					t.Errorf("pipeline %+v", p)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := kratixSpec(t, tt.spec)
			// As the typed client decodes it: the raw spec, into the types.
			if err := k.Spec.UnmarshalJSON(k.Spec.Raw); err != nil {
				t.Fatal(err)
			}
			s, err := ImportedSpec(k)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.check != nil:
				tt.check(t, s)
			}
		})
	}
}

func TestSameSpec(t *testing.T) {
	a := v1alpha1.PromiseSpec{API: runtime.RawExtension{Raw: []byte(`{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1"}`)}}
	b := v1alpha1.PromiseSpec{API: runtime.RawExtension{Raw: []byte(`{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}`)}}
	c := v1alpha1.PromiseSpec{API: runtime.RawExtension{Raw: []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"Other"}`)}}
	if !sameSpec(a, b) {
		t.Error("the same API with its keys reordered is not the same spec")
	}
	if sameSpec(a, c) {
		t.Error("different APIs are the same spec")
	}
}

func TestMirror(t *testing.T) {
	ready := metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.MissingPermissions, Message: "grant it", ObservedGeneration: 2}
	tests := []struct {
		name       string
		generation int64
		conditions []metav1.Condition
		want       metav1.Condition
	}{
		{name: "no Ready yet", generation: 1,
			want: metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: v1alpha1.Importing}},
		{name: "Ready of an older generation", generation: 3, conditions: []metav1.Condition{ready},
			want: metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionUnknown, Reason: v1alpha1.Importing}},
		{name: "Ready of this generation", generation: 2, conditions: []metav1.Condition{ready},
			want: metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.MissingPermissions, Message: "grant it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: tt.generation},
				Status: v1alpha1.PromiseStatus{Conditions: tt.conditions, Kind: "Thing", APIVersion: "example.com/v1"}}
			k := &kratixv1alpha1.Promise{}
			got := mirror(k, sw)
			got.Message = strings.TrimPrefix(got.Message, "waiting for switchyard.dev Promise p to report Ready")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if k.Status.Kind != "Thing" || k.Status.APIVersion != "example.com/v1" {
				t.Errorf("kind %q, apiVersion %q", k.Status.Kind, k.Status.APIVersion)
			}
		})
	}
}
