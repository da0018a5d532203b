package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PromiseSpec is a request API and how to render and place its requests.
type PromiseSpec struct {
	// API is the CustomResourceDefinition of the request kind. It must be
	// namespaced and serve exactly one version. The router installs it,
	// adding the status schema, the status subresource, printer columns and
	// spec.destinationSelector, so an author writes only the spec.
	// +required
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:EmbeddedResource
	API runtime.RawExtension `json:"api"`

	// DestinationSelectors: a destination must match all of them (and the
	// request's own spec.destinationSelector) to take a request.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	DestinationSelectors []metav1.LabelSelector `json:"destinationSelectors,omitempty"`

	// Resources are the templates rendering one request into manifests,
	// written under resources/<namespace>/<promise>/<name>/ of the chosen
	// destination. See docs/spec/v1alpha1/promises.md for the data and
	// functions a template sees.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Resources []ResourceTemplate `json:"resources,omitempty"`

	// Dependencies are manifests sent to every matching destination, under
	// dependencies/<promise>/, before any request (CRDs, namespaces).
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Dependencies []runtime.RawExtension `json:"dependencies,omitempty"`

	// Health says how the router checks that a request's resource really
	// exists once Flux applied it. Without it Ready means applied.
	// +optional
	Health *HealthProbes `json:"health,omitempty"`

	// Claims are keys rendered from each request, such as the name of
	// the cloud resource it creates, that at most one live request may
	// hold in a scope. A request whose claim another request holds is
	// not written: it waits with Ready=False, reason ClaimConflict, until
	// the holder is deleted. See docs/spec/v1alpha1/promises.md.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Claims []Claim `json:"claims,omitempty"`

	// Reschedule says what happens to a request whose destination is
	// deleted. Unset means policy Move without retain annotations, for
	// Promises whose objects hold no data.
	// +optional
	Reschedule *Reschedule `json:"reschedule,omitempty"`
}

// Reschedule policies of a Promise.
const (
	// RescheduleMove moves a request off a destination deleted with
	// cleanup: all: its copy there is removed (retain annotations first)
	// and pruned by Flux before the new copy is written elsewhere.
	RescheduleMove = "Move"
	// RescheduleStay keeps a request where it was when its destination is
	// deleted: it reports DestinationLost and is never placed elsewhere by
	// the router.
	RescheduleStay = "Stay"
)

// Reschedule is what the router does with a request whose destination is
// deleted. See docs/spec/v1alpha1/promises.md.
type Reschedule struct {
	// Policy is Move (the default) or Stay.
	// +optional
	// +kubebuilder:default=Move
	// +kubebuilder:validation:Enum=Move;Stay
	Policy string `json:"policy,omitempty"`

	// RetainAnnotations are added to every object of a request's copy on
	// the destination it leaves, and applied there by Flux, before that
	// copy is removed, so that the objects' controllers keep the cloud
	// resources when Flux prunes the objects. For ACK:
	// services.k8s.aws/deletion-policy: retain.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	RetainAnnotations map[string]string `json:"retainAnnotations,omitempty"`
}

// ReschedulePolicy is spec.reschedule.policy, or Move when unset.
func (p *Promise) ReschedulePolicy() string {
	if p.Spec.Reschedule == nil || p.Spec.Reschedule.Policy == "" {
		return RescheduleMove
	}
	return p.Spec.Reschedule.Policy
}

// RetainAnnotations is spec.reschedule.retainAnnotations, or nil.
func (p *Promise) RetainAnnotations() map[string]string {
	if p.Spec.Reschedule == nil {
		return nil
	}
	return p.Spec.Reschedule.RetainAnnotations
}

// Claim declares one key a request holds while it lives.
type Claim struct {
	// Name is the claim's namespace: requests compete for a key only
	// within one name, across every Promise that declares it (two
	// Promises rendering DynamoDB tables both use "table", for example).
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Key is a template rendered with the request's data, like the
	// resources, to one line, for example {{ .spec.tableName }}. It is
	// rendered before placement, so .destination is empty: where the key
	// must be unique is the scope's business.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Key string `json:"key"`

	// Scope is where a key is unique: Destination (per destination), AWS
	// (per the destination's spec.aws endpoint and region, so destinations
	// sharing an account's region share the keys; destinations without
	// spec.aws all share one scope) or Global. Defaults to Global.
	// +optional
	// +kubebuilder:default=Global
	Scope ClaimScope `json:"scope,omitempty"`
}

// ClaimScope is where a claim's key must be unique.
// +kubebuilder:validation:Enum=Destination;AWS;Global
type ClaimScope string

// Claim scopes, from the narrowest.
const (
	ClaimScopeDestination ClaimScope = "Destination"
	ClaimScopeAWS         ClaimScope = "AWS"
	ClaimScopeGlobal      ClaimScope = "Global"
)

// HealthProbes are the checks a Promise declares; one kind so far.
type HealthProbes struct {
	// DynamoDBTable: Ready only when DescribeTable, against the
	// destination's spec.aws endpoint, reports the table ACTIVE.
	// +optional
	DynamoDBTable *DynamoDBTableProbe `json:"dynamoDBTable,omitempty"`
}

// DynamoDBTableProbe names the table a request creates.
type DynamoDBTableProbe struct {
	// TableName is a template rendered with the request's data, like the
	// resources, for example {{ .spec.tableName }}.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	TableName string `json:"tableName"`
}

// ResourceTemplate renders one file of a request's manifests.
type ResourceTemplate struct {
	// Name of the template; the file is <name>.yaml.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Template is a Go text/template producing one or more YAML documents.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Template string `json:"template"`
}

// PromiseStatus is the observed state of a Promise.
type PromiseStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// APIVersion of the request kind, for example example.com/v1.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the requests.
	// +optional
	Kind string `json:"kind,omitempty"`

	// Destinations that received the dependencies.
	// +optional
	Destinations []string `json:"destinations,omitempty"`
}

// Promise publishes a request API and renders its requests for destinations.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=switchyard
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.status.kind`
// +kubebuilder:printcolumn:name="API Version",type=string,JSONPath=`.status.apiVersion`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Promise struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PromiseSpec   `json:"spec,omitempty"`
	Status PromiseStatus `json:"status,omitempty"`
}

// PromiseList is a list of Promises.
// +kubebuilder:object:root=true
type PromiseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Promise `json:"items"`
}
