package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RequestStatus is the status the router writes on every request, whatever
// its Promise. The router adds its schema to the request CRD it installs.
type RequestStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Scheduled, Written, Applied and Ready.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Destination the request is placed on.
	// +optional
	Destination string `json:"destination,omitempty"`

	// PlacementReason says why the destination was chosen.
	// +optional
	PlacementReason string `json:"placementReason,omitempty"`

	// Commit in the state store that carries the request's manifests: a
	// Git commit, or a bucket store's content digest.
	// +optional
	Commit string `json:"commit,omitempty"`

	// Outputs are computed by the Promise's status.outputs from the
	// objects the request rendered, read on its destination.
	// +optional
	Outputs map[string]string `json:"outputs,omitempty"`

	// Verified holds what the Promise's verification steps confirmed out
	// of band, to recognise the request's resource later: the
	// dynamoDBTable step records the ARN of the table it found to be the
	// request's under key tableArn.
	// +optional
	Verified map[string]string `json:"verified,omitempty"`
}

// DestinationSelectorField is the spec field through which a request
// narrows its placement; the router adds it to every request CRD.
const DestinationSelectorField = "destinationSelector"

// RequestUIDLabel is on every object the router renders for a request, with
// the request's UID: the router watches objects on destinations by it, and
// reads a request's outputs only from objects carrying its own UID.
const RequestUIDLabel = "switchyard.dev/request-uid"
