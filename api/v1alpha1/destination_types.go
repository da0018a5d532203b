package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cleanup policies of a Destination.
const (
	// CleanupNone leaves the destination's directory in the state store
	// when the Destination is deleted: the cluster keeps what it runs, and
	// its requests stay (DestinationLost).
	CleanupNone = "none"
	// CleanupAll moves the destination's requests away, then removes the
	// rest of its directory through a revision Flux on the cluster applies
	// (canaries kept until then), so Flux prunes everything the router sent.
	CleanupAll = "all"
)

// State store kinds a Destination can reference.
const (
	GitStateStoreKind    = "GitStateStore"
	BucketStateStoreKind = "BucketStateStore"
)

// StateStoreReference names the state store a destination reads.
type StateStoreReference struct {
	// Kind of the store.
	// +optional
	// +kubebuilder:default=GitStateStore
	// +kubebuilder:validation:Enum=GitStateStore;BucketStateStore
	Kind string `json:"kind,omitempty"`

	// Name of the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// EffectiveKind is Kind, or GitStateStore when unset (the default).
func (r StateStoreReference) EffectiveKind() string {
	if r.Kind == "" {
		return GitStateStoreKind
	}
	return r.Kind
}

// String is kind/name, which names a store across kinds: a GitStateStore
// and a BucketStateStore may share a name.
func (r StateStoreReference) String() string { return r.EffectiveKind() + "/" + r.Name }

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

	// Cleanup says what deleting the Destination does. none: the
	// directory and what Flux applied stay, and so do its requests
	// (DestinationLost). all: its requests move (their Promises' reschedule
	// policy), then the rest of the directory is removed in a revision Flux
	// there applies before the canaries go; the Destination reports
	// Cleaning until then. See docs/spec/v1alpha1/destinations.md.
	// +optional
	// +kubebuilder:default=none
	// +kubebuilder:validation:Enum=none;all
	Cleanup string `json:"cleanup,omitempty"`

	// NamespaceSelector restricts which namespaces may place requests here,
	// by the namespaces' labels. Unset takes requests from every namespace.
	// A request from another namespace is not placed here, and says why.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Flux names the objects that Flux on the destination reconciles this
	// destination's directory with; `router flux-manifests` prints them.
	// +optional
	Flux FluxSpec `json:"flux,omitempty"`

	// KubeConfigSecretRef names a Secret holding a kubeconfig (key
	// "value") for the destination cluster. With it the router reads Flux's
	// status there (the Applied condition) and asks Flux to fetch at once
	// after each commit; it needs get, list, watch and patch on
	// gitrepositories and kustomizations in spec.flux.namespace. Only the
	// current context is used, with its credentials inline: exec,
	// auth-provider and insecure-skip-tls-verify are refused unless the
	// router's --insecure-kubeconfig-exec or --insecure-kubeconfig-tls
	// allows them, and file paths (tokenFile, certificate-authority,
	// client-certificate, client-key) always are (reason
	// InsecureKubeConfig).
	// +optional
	KubeConfigSecretRef *SecretReference `json:"kubeConfigSecretRef,omitempty"`

	// AWS is where the router checks that resources really exist (the
	// Promise's health probes), for example LocalStack's endpoint.
	// +optional
	AWS *AWSSpec `json:"aws,omitempty"`
}

// FluxSpec says where the destination's Flux objects live.
type FluxSpec struct {
	// Namespace of the Flux source (GitRepository or Bucket) and
	// Kustomizations on the destination.
	// +optional
	// +kubebuilder:default=flux-system
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// URL from which Flux on the destination reads the store, when it
	// differs from the store's URL or endpoint: a mirror, the router's own
	// --serve-git address as that cluster reaches it, or an S3 endpoint
	// (http:// or https://) as that cluster reaches it.
	// +optional
	// +kubebuilder:validation:Pattern=`^(https?|ssh)://`
	URL string `json:"url,omitempty"`

	// Interval at which Flux polls the state store. The router also asks
	// for an immediate fetch after each commit when it can reach the
	// destination.
	// +optional
	// +kubebuilder:default="1m"
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// AWSSpec is an AWS (or AWS-compatible) endpoint for health probes.
type AWSSpec struct {
	// Endpoint URL, for example http://localstack.localstack:4566. Empty
	// means the region's public AWS endpoint.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://`
	Endpoint string `json:"endpoint,omitempty"`

	// Region, for example us-east-1.
	// +required
	// +kubebuilder:validation:MinLength=1
	Region string `json:"region"`

	// SecretRef names a Secret with accessKeyID and secretAccessKey.
	// +required
	SecretRef SecretReference `json:"secretRef"`
}

// DestinationStatus is the observed state of a Destination.
type DestinationStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, and Applied (whether Flux on the destination
	// applied the last commit that changed its directory).
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

	// Flux is what the router sees of Flux on the destination.
	// +optional
	Flux *FluxStatus `json:"flux,omitempty"`
}

// FluxStatus is the state of the destination's Flux objects.
type FluxStatus struct {
	// GitRepository (for a GitStateStore) or Bucket (for a
	// BucketStateStore) and Kustomizations are the objects the router
	// reads, as namespace/name on the destination.
	GitRepository  string   `json:"gitRepository,omitempty"`
	Bucket         string   `json:"bucket,omitempty"`
	Kustomizations []string `json:"kustomizations,omitempty"`

	// LastAppliedRevision is the revision the resources Kustomization
	// applied last, for example main@sha1:<hash>, or sha256:<digest> for
	// a Bucket.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
}

// Destination is a cluster that reads a directory of a state store with Flux.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=switchyard
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.stateStoreRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.stateStoreRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.path`,priority=1
// +kubebuilder:printcolumn:name="Schedulable",type=boolean,JSONPath=`.spec.schedulable`
// +kubebuilder:printcolumn:name="Placements",type=integer,JSONPath=`.status.placements`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Applied",type=string,JSONPath=`.status.conditions[?(@.type=="Applied")].reason`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.flux.lastAppliedRevision`,priority=1
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

// FluxNamespace is spec.flux.namespace, or flux-system when unset.
func (d *Destination) FluxNamespace() string {
	if d.Spec.Flux.Namespace != "" {
		return d.Spec.Flux.Namespace
	}
	return "flux-system"
}

// FluxName is the name of the destination's GitRepository; its
// Kustomizations add -dependencies and -resources. Named after the
// Destination, so several destinations can share one cluster.
func (d *Destination) FluxName() string { return "switchyard-" + d.Name }

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
