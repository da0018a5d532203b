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

	// Workflows are pipelines run as Jobs with Kratix's pipeline
	// contract. Their output is written next to what the resources
	// render: a request's configure pipelines write under
	// resources/<namespace>/<promise>/<name>/<pipeline>/, the Promise's
	// under dependencies/<promise>/<pipeline>/.
	// +optional
	Workflows *Workflows `json:"workflows,omitempty"`

	// Dependencies are manifests sent to every matching destination, under
	// dependencies/<promise>/, before any request (CRDs, namespaces).
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Dependencies []runtime.RawExtension `json:"dependencies,omitempty"`

	// Status says how the router computes each request's status.outputs
	// and readiness from the objects the request rendered, read on its
	// destination. Without readyWhen, a request is Ready when kstatus
	// reports every object it rendered Current. See
	// docs/spec/v1alpha1/promises.md.
	// +optional
	Status *StatusRules `json:"status,omitempty"`

	// Health adds out-of-band verification steps: checks, outside the
	// destination cluster, that a request's resource really exists and is
	// the request's own. A request is Ready only when its objects are
	// ready (Status) and every step passes.
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

// Expression is a CEL expression in ${...}, for example
// ${table.status.tableStatus}, where table names a resource template and
// stands for the object it renders, as the destination reports it. A
// template name with '-' is spelled with '_' (network-policy becomes
// network_policy). The whole string is one expression.
// +kubebuilder:validation:MinLength=4
// +kubebuilder:validation:MaxLength=4096
// +kubebuilder:validation:Pattern=`^\$\{[\s\S]*\}$`
type Expression string

// StatusRules compute a request's outputs and readiness from its objects.
// They are compiled and type-checked when the Promise is applied: a
// Promise whose expression does not compile, names no resource template or
// has the wrong type is Ready=False with reason InvalidStatusExpression, and
// its requests are left as they are.
// +kubebuilder:validation:XValidation:rule="!has(self.printerColumns) || self.printerColumns.all(c, has(self.outputs) && c.output in self.outputs)",message="every printer column must name one of outputs"
type StatusRules struct {
	// Outputs are copied into each request's status.outputs under their
	// name: a string result as it is, any other as JSON. An output whose
	// expression cannot be evaluated yet (a field the object does not
	// have) is left out.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-zA-Z][a-zA-Z0-9_]*$') && size(k) <= 63)",message="output names are identifiers: a letter, then letters, digits and '_', at most 63"
	Outputs map[string]Expression `json:"outputs,omitempty"`

	// ReadyWhen are boolean expressions; a request is Ready when all are
	// true. Without them, readiness comes from kstatus: every object the
	// request rendered must be Current.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	ReadyWhen []Expression `json:"readyWhen,omitempty"`

	// PrinterColumns are added to the request kind, showing outputs in
	// kubectl get.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	PrinterColumns []OutputColumn `json:"printerColumns,omitempty"`
}

// OutputColumn shows one output as a printer column of the request kind.
type OutputColumn struct {
	// Name is the column's header.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Output names the output shown.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Output string `json:"output"`

	// Description of the column.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description,omitempty"`

	// Priority 0 shows the column in kubectl get; higher only with -o wide.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Priority int32 `json:"priority,omitempty"`
}

// HealthProbes are the verification steps a Promise declares; one kind so
// far.
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
