package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Workflows are pipelines of containers run as Jobs on the platform
// cluster, with Kratix's pipeline contract: each reads the object from
// /kratix/input/object.yaml and writes manifests to /kratix/output and
// metadata to /kratix/metadata. See docs/spec/v1alpha1/promises.md.
type Workflows struct {
	// Resource workflows run for each request of the Promise.
	// +optional
	Resource *WorkflowActions `json:"resource,omitempty"`

	// Promise workflows run for the Promise itself: configure produces
	// dependencies sent to every matching destination, delete runs when
	// the Promise is deleted.
	// +optional
	Promise *WorkflowActions `json:"promise,omitempty"`
}

// WorkflowActions are the pipelines run on configure (create, change,
// manual reconciliation) and on delete, each list in order.
type WorkflowActions struct {
	// Configure pipelines run in order; their outputs are written.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Configure []Pipeline `json:"configure,omitempty"`

	// Delete pipelines run in order before the router removes what the
	// configure pipelines wrote; their outputs are not written.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Delete []Pipeline `json:"delete,omitempty"`
}

// Pipeline is Kratix's platform.kratix.io/v1alpha1 Pipeline, as a Promise
// lists it in its workflows.
// +kubebuilder:validation:XValidation:rule="self.apiVersion == 'platform.kratix.io/v1alpha1' && self.kind == 'Pipeline'",message="a workflow lists platform.kratix.io/v1alpha1 Pipelines"
type Pipeline struct {
	// APIVersion is platform.kratix.io/v1alpha1.
	// +required
	APIVersion string `json:"apiVersion"`

	// Kind is Pipeline.
	// +required
	Kind string `json:"kind"`

	// Metadata names the pipeline.
	// +required
	Metadata PipelineMetadata `json:"metadata"`

	// Spec is what the pipeline runs.
	// +required
	Spec PipelineSpec `json:"spec"`
}

// PipelineMetadata is the metadata of a Pipeline. Its name appears in Job,
// ServiceAccount and directory names, so it is a short DNS label.
type PipelineMetadata struct {
	// Name of the pipeline, unique within its list.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`

	// Labels are added to the pipeline's Jobs and Pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations are added to the pipeline's Jobs and Pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PipelineSpec is the containers a pipeline runs, in order, and what they
// may use.
type PipelineSpec struct {
	// Containers run one after the other, each seeing what the previous
	// ones wrote to /kratix/output and /kratix/metadata.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Containers []Container `json:"containers"`

	// Volumes the containers may mount: Pod volumes (core/v1 Volume). The
	// router's own (kratix-input, kratix-output, kratix-metadata) are
	// reserved. Their schema is the Pod's, checked when the router builds
	// the Job: a volume with a field core/v1 does not know is refused by
	// name (the full Volume schema would make this CRD too large to apply).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:pruning:PreserveUnknownFields
	Volumes []runtime.RawExtension `json:"volumes,omitempty"`

	// ImagePullSecrets for the containers' images, in the namespace the
	// pipeline runs in.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// RBAC is what the pipeline's ServiceAccount may do beyond reading its
	// object and handing its output over.
	// +optional
	RBAC *PipelineRBAC `json:"rbac,omitempty"`
}

// Container is one step of a pipeline. The router adds the contract's
// mounts and environment, a restricted security context and default
// resources.
type Container struct {
	// Name of the container, unique in the pipeline.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Image to run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`

	// Command overrides the image's entrypoint.
	// +optional
	Command []string `json:"command,omitempty"`

	// Args are the command's arguments.
	// +optional
	Args []string `json:"args,omitempty"`

	// WorkingDir of the process.
	// +optional
	WorkingDir string `json:"workingDir,omitempty"`

	// Env adds variables; the KRATIX_ variables are the router's.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// EnvFrom adds variables from ConfigMaps and Secrets in the namespace
	// the pipeline runs in.
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`

	// VolumeMounts of the pipeline's volumes; /kratix is reserved.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// ImagePullPolicy of the image.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// Resources override the default requests (100m CPU, 128Mi) and
	// limits (200m CPU, 256Mi).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// PipelineRBAC is what a pipeline's ServiceAccount may do.
type PipelineRBAC struct {
	// Permissions are granted to the pipeline's own ServiceAccount, in
	// the namespace it runs in unless a permission names another.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Permissions []PipelinePermission `json:"permissions,omitempty"`
}

// PipelinePermission is one RBAC rule and where it applies.
type PipelinePermission struct {
	// ResourceNamespace is where the rule applies: empty for the namespace
	// the pipeline runs in, "*" for every namespace (a ClusterRole), or a
	// namespace's name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ResourceNamespace string `json:"resourceNamespace,omitempty"`

	rbacv1.PolicyRule `json:",inline"`
}

// Pipelines returns p's pipelines for a workflow type ("resource" or
// "promise") and action ("configure" or "delete"); none when unset.
func (p *Promise) Pipelines(typ, action string) []Pipeline {
	w := p.Spec.Workflows
	if w == nil {
		return nil
	}
	a := w.Resource
	if typ == "promise" {
		a = w.Promise
	}
	if a == nil {
		return nil
	}
	if action == "delete" {
		return a.Delete
	}
	return a.Configure
}
