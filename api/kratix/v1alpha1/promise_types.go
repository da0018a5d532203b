package v1alpha1

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PromiseSpec is the part of a Kratix Promise's spec that Switchyard
// imports. Any other field is kept by the API server (the schema preserves
// unknown fields) and reported by the router as unsupported.
type PromiseSpec struct {
	// API is the CustomResourceDefinition of the request kind, copied to
	// the Switchyard Promise's spec.api. Switchyard requires it.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:EmbeddedResource
	API *runtime.RawExtension `json:"api,omitempty"`

	// Dependencies are manifests sent to every matching destination,
	// copied to the Switchyard Promise's spec.dependencies.
	// +optional
	Dependencies []runtime.RawExtension `json:"dependencies,omitempty"`

	// DestinationSelectors are Kratix's scheduling labels; each becomes a
	// label selector of the Switchyard Promise, all of which a destination
	// must match.
	// +optional
	DestinationSelectors []PromiseScheduling `json:"destinationSelectors,omitempty"`

	// Workflows are Kratix's pipelines. The schema leaves them open: the
	// router decodes them strictly against Switchyard's spec.workflows and
	// names every field it does not support.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Workflows *runtime.RawExtension `json:"workflows,omitempty"`

	// Raw is the spec as the API server sent it, fields unknown to these
	// types included, so the router can name what it does not import. It
	// is filled by UnmarshalJSON and never serialised: write a Promise with
	// a patch, never an update, or the unknown fields are lost.
	Raw []byte `json:"-"`
}

// UnmarshalJSON decodes the spec and keeps its raw form in Raw.
func (s *PromiseSpec) UnmarshalJSON(b []byte) error {
	type plain PromiseSpec // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = PromiseSpec(p)
	s.Raw = append([]byte(nil), b...)
	return nil
}

// PromiseScheduling is one of Kratix's destination selectors: labels a
// destination must carry. Unknown fields are kept so the router can name
// them.
// +kubebuilder:pruning:PreserveUnknownFields
type PromiseScheduling struct {
	// MatchLabels a destination must carry, all of them.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// MatchExpressions a destination must satisfy, as in a label
	// selector. A Switchyard extension: Kratix reads only matchLabels and
	// ignores these, so a Promise using them matches more destinations
	// under Kratix.
	// +optional
	MatchExpressions []metav1.LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// PromiseStatus mirrors the imported Switchyard Promise.
type PromiseStatus struct {
	// ObservedGeneration is the generation last imported.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, the Switchyard Promise's Ready once imported, or
	// why the Promise was not imported (UnsupportedField, NameConflict).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Kind of the requests, from the Switchyard Promise.
	// +optional
	Kind string `json:"kind,omitempty"`

	// APIVersion of the request kind, from the Switchyard Promise.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
}

// Promise is a Kratix Promise, imported by the router into the
// switchyard.dev Promise of the same name.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=kratix
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.status.kind`
// +kubebuilder:printcolumn:name="API Version",type=string,JSONPath=`.status.apiVersion`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Promise struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:pruning:PreserveUnknownFields
	Spec   PromiseSpec   `json:"spec,omitempty"`
	Status PromiseStatus `json:"status,omitempty"`
}

// PromiseList is a list of Kratix Promises.
// +kubebuilder:object:root=true
type PromiseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Promise `json:"items"`
}
