package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cleanup policies of a Destination.
const (
	// CleanupNone leaves the destination's directory in the state store
	// when the Destination is deleted: the cluster keeps what it runs.
	CleanupNone = "none"
	// CleanupAll removes the destination's directory, so Flux on the
	// cluster prunes everything the router sent.
	CleanupAll = "all"
)

// GitStateStoreKind is the only state store kind so far.
const GitStateStoreKind = "GitStateStore"

// StateStoreReference names the state store a destination reads.
type StateStoreReference struct {
	// Kind of the store.
	// +optional
	// +kubebuilder:default=GitStateStore
	// +kubebuilder:validation:Enum=GitStateStore
	Kind string `json:"kind,omitempty"`

	// Name of the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DestinationSpec describes a cluster that takes requests. The router selects
// destinations by their metadata.labels.
type DestinationSpec struct {
	// StateStoreRef is the store this destination's Flux reads.
	// +required
	StateStoreRef StateStoreReference `json:"stateStoreRef"`

	// Path of this destination's directory under the store's path.
	// Defaults to the Destination's name; unique per store.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)*$`
	// +kubebuilder:validation:MaxLength=512
	Path string `json:"path,omitempty"`

	// StrictMatchLabels makes the destination take only requests whose
	// selectors name at least one label; an empty selector does not match.
	// +optional
	StrictMatchLabels bool `json:"strictMatchLabels,omitempty"`

	// Schedulable false cordons the destination: it keeps what it has and
	// takes nothing new.
	// +optional
	// +kubebuilder:default=true
	Schedulable *bool `json:"schedulable,omitempty"`

	// Capacity is the most resource requests the destination takes. Unset
	// means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Capacity *int32 `json:"capacity,omitempty"`

	// Cleanup says what happens to the destination's directory in the state
	// store when the Destination is deleted: none keeps it, all removes it.
	// Either way its requests are rescheduled to other destinations.
	// +optional
	// +kubebuilder:default=none
	// +kubebuilder:validation:Enum=none;all
	Cleanup string `json:"cleanup,omitempty"`
}

// DestinationStatus is the observed state of a Destination.
type DestinationStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Path is the directory, relative to the repository root, that Flux on
	// this destination should read.
	// +optional
	Path string `json:"path,omitempty"`

	// Placements is the number of resource requests placed here.
	// +optional
	Placements int32 `json:"placements,omitempty"`

	// LastCommit is the last commit the router made that changed this
	// destination's directory, as far as this router process knows.
	// +optional
	LastCommit string `json:"lastCommit,omitempty"`
}

// Destination is a cluster that reads a directory of a state store with Flux.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=switchyard
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.stateStoreRef.name`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.path`
// +kubebuilder:printcolumn:name="Schedulable",type=boolean,JSONPath=`.spec.schedulable`
// +kubebuilder:printcolumn:name="Placements",type=integer,JSONPath=`.status.placements`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Destination struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DestinationSpec   `json:"spec,omitempty"`
	Status DestinationStatus `json:"status,omitempty"`
}

// EffectivePath is spec.path, or the name when unset.
func (d *Destination) EffectivePath() string {
	if d.Spec.Path != "" {
		return d.Spec.Path
	}
	return d.Name
}

// IsSchedulable reports whether the destination takes new requests.
func (d *Destination) IsSchedulable() bool {
	return d.Spec.Schedulable == nil || *d.Spec.Schedulable
}

// DestinationList is a list of Destinations.
// +kubebuilder:object:root=true
type DestinationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Destination `json:"items"`
}
