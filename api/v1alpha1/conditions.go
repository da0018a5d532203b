package v1alpha1

// Condition types. Every kind has Ready; requests also carry the steps that
// lead to it.
const (
	// ReadyCondition summarises the object: True when it does its job.
	ReadyCondition = "Ready"
	// ScheduledCondition (requests): a destination was chosen.
	ScheduledCondition = "Scheduled"
	// WrittenCondition (requests): the rendered manifests are committed and
	// pushed to the destination's state store.
	WrittenCondition = "Written"
)

// Reasons. The constant name and its value are the same word, so that what a
// user reads in a condition can be found in the code with one search.
const (
	// Reconciled: the object is Ready and nothing is pending.
	Reconciled = "Reconciled"
	// Progressing: the router is working on it; look again shortly.
	Progressing = "Progressing"

	// GitStateStore reasons.

	// SecretNotFound: the referenced Secret does not exist.
	SecretNotFound = "SecretNotFound"
	// InvalidSecret: the Secret lacks a key the auth method needs.
	InvalidSecret = "InvalidSecret"
	// RepositoryUnreachable: fetching from the repository failed.
	RepositoryUnreachable = "RepositoryUnreachable"

	// Destination reasons.

	// StateStoreNotReady: the referenced store is missing or not Ready.
	StateStoreNotReady = "StateStoreNotReady"
	// PathConflict: another destination of the same store owns the path.
	PathConflict = "PathConflict"
	// WriteFailed: committing or pushing to the state store failed.
	WriteFailed = "WriteFailed"
	// Cordoned: the destination is not schedulable; it keeps what it has.
	Cordoned = "Cordoned"

	// Promise reasons.

	// InvalidAPI: spec.api is not a usable CustomResourceDefinition.
	InvalidAPI = "InvalidAPI"
	// APIConflict: the CRD exists and belongs to something else.
	APIConflict = "APIConflict"
	// APINotEstablished: the request CRD is installed but not yet served.
	APINotEstablished = "APINotEstablished"
	// RequestsExist: the Promise is being deleted and waits for its
	// requests to be deleted first.
	RequestsExist = "RequestsExist"

	// Request reasons.

	// Placed: the request has a destination that matches it.
	Placed = "Placed"
	// NoMatchingDestination: no Ready, schedulable destination with room
	// matches; the request is placed as soon as one appears.
	NoMatchingDestination = "NoMatchingDestination"
	// Misplaced: the request's destination no longer matches its
	// selectors. The request stays where it is; move it by hand if wanted.
	Misplaced = "Misplaced"
	// PromiseNotReady: the request's Promise is missing or not Ready.
	PromiseNotReady = "PromiseNotReady"
	// RenderFailed: the Promise's templates failed for this request.
	RenderFailed = "RenderFailed"
	// Committed: the manifests are in the state store at status.commit.
	Committed = "Committed"
	// Deleting: the request's files are being removed.
	Deleting = "Deleting"
)
