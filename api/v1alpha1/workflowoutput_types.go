package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// WorkflowOutput is what one workflow Job's pipeline wrote to
// /kratix/output and /kratix/metadata, handed over by the Job's last
// container (`router pipeline write`) for the router to read. It is named
// after the Job, owned by it, and immutable. A kind of its own, rather than
// a ConfigMap, so that a pipeline's ServiceAccount may create nothing else
// and the router reads no ConfigMaps.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=switchyard
// +kubebuilder:validation:XValidation:rule="self.data == oldSelf.data && self.job == oldSelf.job",message="a workflow output is immutable"
// +kubebuilder:printcolumn:name="Job",type=string,JSONPath=`.job.name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowOutput struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Job is the Job whose output this is.
	// +required
	Job WorkflowJob `json:"job"`

	// Data is the output: a gzip-compressed tar of output/ and metadata/,
	// at most 1,000 KiB (the writer refuses more; etcd would too).
	// +required
	Data []byte `json:"data"`
}

// WorkflowJob names a workflow Job.
type WorkflowJob struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
}

// WorkflowOutputList is a list of WorkflowOutputs.
// +kubebuilder:object:root=true
type WorkflowOutputList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowOutput `json:"items"`
}
