package v1alpha1

// Condition types. Every kind has Ready; requests also carry the steps that
// lead to it.
const (
	// ReadyCondition summarises the object: True when it does its job.
	ReadyCondition = "Ready"
	// ScheduledCondition (requests): a destination was chosen.
	ScheduledCondition = "Scheduled"
	// WrittenCondition (requests): the rendered manifests are in the
	// destination's state store (committed and pushed, or put).
	WrittenCondition = "Written"
	// AppliedCondition (requests and destinations): Flux on the
	// destination applied the commit, or a later one.
	AppliedCondition = "Applied"
)

// Reasons. The constant name and its value are the same word, so that what a
// user reads in a condition can be found in the code with one search.
const (
	// Reconciled: the object is Ready and nothing is pending.
	Reconciled = "Reconciled"
	// Progressing: the router is working on it; look again shortly.
	Progressing = "Progressing"

	// GitStateStore and BucketStateStore reasons.

	// SecretNotFound: the referenced Secret does not exist.
	SecretNotFound = "SecretNotFound"
	// CrossNamespaceRef: the Secret is outside the router's namespace and
	// the router runs without --allow-cross-namespace-refs (stores, and a
	// destination's kubeconfig or AWS Secret).
	CrossNamespaceRef = "CrossNamespaceRef"
	// InvalidSecret: the Secret lacks a key the auth method needs.
	InvalidSecret = "InvalidSecret"
	// RepositoryUnreachable: fetching from the repository failed.
	RepositoryUnreachable = "RepositoryUnreachable"
	// BucketUnreachable: listing, reading or writing the bucket failed.
	BucketUnreachable = "BucketUnreachable"

	// Destination reasons.

	// StateStoreNotReady: the referenced store is missing or not Ready.
	StateStoreNotReady = "StateStoreNotReady"
	// PathConflict: another destination of the same store owns the path.
	PathConflict = "PathConflict"
	// WriteFailed: committing or pushing to the state store failed.
	WriteFailed = "WriteFailed"
	// Cordoned: the destination is not schedulable; it keeps what it has.
	Cordoned = "Cordoned"
	// InsecureKubeConfig (Ready of destinations; Applied of destinations
	// and their requests): the kubeconfig in kubeConfigSecretRef uses a
	// field the router refuses (exec, auth-provider, tokenFile, a file
	// path, or insecure-skip-tls-verify without the matching
	// --insecure-kubeconfig-* flag). The router builds no client from it
	// and connects nowhere; the message names the fields, never their
	// values.
	InsecureKubeConfig = "InsecureKubeConfig"
	// Cleaning: the destination is being deleted and its cleanup waits:
	// for requests to leave (moved by their own reconcilers), or, with
	// cleanup: all, for Flux there to prune the files the router removed.
	// The message says what is pending.
	Cleaning = "Cleaning"
	// CleanupDone: Flux on the destination applied a revision without the
	// requests' and dependencies' files (cleanup: all); the router removed
	// the rest of its directory and lets it go. Also the reason of the
	// event that says so.
	CleanupDone = "CleanupDone"

	// Promise reasons.

	// InvalidAPI: spec.api is not a usable CustomResourceDefinition.
	InvalidAPI = "InvalidAPI"
	// APIConflict: the CRD exists and belongs to something else.
	APIConflict = "APIConflict"
	// APINotEstablished: the request CRD is installed but not yet served.
	APINotEstablished = "APINotEstablished"
	// MissingPermissions: the router's ServiceAccount may not read or
	// update the Promise's request kind; `router rbac <promise>` prints the
	// ClusterRole and binding that grant exactly that.
	MissingPermissions = "MissingPermissions"
	// InvalidStatusExpression: an expression of spec.status does not
	// compile, names no resource template or has the wrong type. The
	// message names the expression and the error. The Promise's requests
	// are left as they are until it is fixed.
	InvalidStatusExpression = "InvalidStatusExpression"
	// RequestsExist: the Promise is being deleted and waits for its
	// requests to be deleted first.
	RequestsExist = "RequestsExist"

	// Kratix Promise reasons (platform.kratix.io Promises, imported into
	// switchyard.dev Promises). Once imported, a Kratix Promise's Ready is
	// its Switchyard Promise's.

	// UnsupportedField: the Kratix Promise uses fields Switchyard does not
	// support; the message lists their paths. Nothing is imported until
	// they are removed, and a Switchyard Promise imported earlier is left
	// as it is.
	UnsupportedField = "UnsupportedField"
	// NameConflict: a switchyard.dev Promise of the same name exists and
	// was not imported from this Kratix Promise; it is left alone.
	NameConflict = "NameConflict"
	// ImportRejected: the API server refused the Switchyard Promise built
	// from the Kratix Promise (it fails the Switchyard Promise's schema);
	// the message is the API server's.
	ImportRejected = "ImportRejected"
	// Importing: the Switchyard Promise was written and has not reported
	// Ready yet.
	Importing = "Importing"

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
	// ResourcesReady (Ready): every object the request rendered is on
	// its destination and ready: the Promise's readyWhen expressions are
	// true, or, without them, kstatus reports every object Current.
	ResourcesReady = "ResourcesReady"
	// ResourceInProgress, ResourceFailed, ResourceTerminating and
	// ResourceNotFound (Ready): kstatus reports an object the request
	// rendered so (NotFound: it is not on the destination, or not with
	// this request's label). The message names the object (kind,
	// namespace, name) and gives kstatus's message.
	ResourceInProgress  = "ResourceInProgress"
	ResourceFailed      = "ResourceFailed"
	ResourceTerminating = "ResourceTerminating"
	ResourceNotFound    = "ResourceNotFound"
	// ReadyWhenNotMet (Ready): a readyWhen expression is false, or cannot
	// be evaluated yet (a field the object does not have); the message
	// names it.
	ReadyWhenNotMet = "ReadyWhenNotMet"
	// AwaitingWatch (Ready): the router's watch of a kind the request
	// rendered on the destination has not listed it yet, or cannot (the
	// message says why: the kind is not served there, or the router may
	// not list it).
	AwaitingWatch = "AwaitingWatch"
	// Committed: the manifests are in the state store at status.commit.
	Committed = "Committed"
	// Deleting: the request's files are being removed, pruned by Flux,
	// and its resource deleted; the message says which step is pending.
	Deleting = "Deleting"
	// ClaimConflict: another live request holds one of the request's
	// claims (spec.claims of its Promise) in the same scope. Nothing of
	// the request is written; it proceeds by itself when the holder goes.
	// The message names the claim and the holder.
	ClaimConflict = "ClaimConflict"
	// Moving (Scheduled and Ready): the request's destination is being
	// deleted with cleanup: all, and the request leaves it before it is
	// placed elsewhere; Written says which step is pending.
	Moving = "Moving"
	// Retaining (Written): the request's files on the destination it
	// leaves were rewritten with the Promise's retain annotations; waiting
	// for Flux there to apply them.
	Retaining = "Retaining"
	// Pruning (Written): the request's files were removed from the
	// destination it leaves; waiting for Flux there to prune its objects.
	// The new copy is written only after that.
	Pruning = "Pruning"
	// DestinationLost (Scheduled and Ready): the request's destination is
	// gone or being deleted and the request is not placed elsewhere: its
	// Promise's reschedule policy is Stay, or the router cannot remove its
	// copy there (cleanup: none, or the Destination is gone). The message
	// says what would release it.
	DestinationLost = "DestinationLost"
	// Rescheduled (event): the request left its old destination and was
	// placed on another.
	Rescheduled = "Rescheduled"
	// OrphansSwept (Destination event): the sweep removed request
	// directories on the destination that no live request owns.
	OrphansSwept = "OrphansSwept"
	// Rewriting (event on a state store): the router took a new value of
	// the rewrite annotation and woke the store's destinations to check
	// their files against the store.
	Rewriting = "Rewriting"

	// Applied reasons (requests and destinations).
	// InSync: Flux applied the commit or a later one.
	InSync = "InSync"
	// AwaitingFlux: Flux has not applied the commit yet.
	AwaitingFlux = "AwaitingFlux"
	// FluxFailed: Flux's GitRepository or Kustomization is not Ready; the
	// message is Flux's.
	FluxFailed = "FluxFailed"
	// FluxNotFound: the destination has no such GitRepository or
	// Kustomization; apply what `router flux-manifests` prints.
	FluxNotFound = "FluxNotFound"
	// NoFeedback: the destination has no kubeConfigSecretRef, so the router
	// cannot see Flux; it applies within its polling interval.
	NoFeedback = "NoFeedback"
	// DestinationUnreachable: the kubeconfig is missing, invalid, or its
	// API server does not answer.
	DestinationUnreachable = "DestinationUnreachable"

	// Health probe reasons (requests).
	// TableActive: DescribeTable reports the table ACTIVE.
	TableActive = "TableActive"
	// TableNotActive: the table exists but is CREATING, UPDATING, ...
	TableNotActive = "TableNotActive"
	// TableNotFound: the endpoint does not know the table (yet).
	TableNotFound = "TableNotFound"
	// TableNotSynced: the request's ACK Table object on the destination
	// is missing, or ACK has not synced it (ACK.ResourceSynced is not
	// True, or it has no ARN yet).
	TableNotSynced = "TableNotSynced"
	// TableNotOwned: a table of the name exists but is not this
	// request's: it predates the request's Table object (ACK adopted it)
	// or its ARN is not the one ACK reports for the object.
	TableNotOwned = "TableNotOwned"
	// InvalidCredentials: the endpoint refused the credentials.
	InvalidCredentials = "InvalidCredentials"
	// EndpointUnreachable: the AWS endpoint did not answer.
	EndpointUnreachable = "EndpointUnreachable"
	// ProbeFailed: the probe could not run (bad template, other errors).
	ProbeFailed = "ProbeFailed"
)

// The finalizer at admission (Promises). The router adds its finalizer to
// each request; where the API server serves admissionregistration.k8s.io/v1
// MutatingAdmissionPolicy and the admin has granted the router the opt-in
// rights on them, it installs one per Promise that adds it at create,
// saving an update per request.
const (
	// FinalizerAtAdmissionCondition (Promises): True when the Promise's
	// MutatingAdmissionPolicy adds the finalizer to new requests; False
	// when the router adds it with an update to each request instead.
	FinalizerAtAdmissionCondition = "FinalizerAtAdmission"

	// AdmissionPolicy: the policy and its binding are installed.
	AdmissionPolicy = "AdmissionPolicy"
	// AdmissionPolicyUnavailable: the API server does not serve
	// MutatingAdmissionPolicy (before Kubernetes 1.36, or disabled with
	// --runtime-config); the router updates each request.
	AdmissionPolicyUnavailable = "AdmissionPolicyUnavailable"
	// AdmissionPolicyPending: the request kind is new; the policy waits
	// until the API server has had its schema for a few seconds (before
	// that, its policy plugin refuses the creates a policy matches); the
	// router updates each request meanwhile.
	AdmissionPolicyPending = "AdmissionPolicyPending"
	// AdmissionPolicyNotPermitted: the router lacks the rights on
	// MutatingAdmissionPolicies (the default: they are opt-in, since they
	// let their holder mutate almost any object at admission); the router
	// updates each request.
	AdmissionPolicyNotPermitted = "AdmissionPolicyNotPermitted"
	// AdmissionPolicyFailed: installing the policy failed (the message
	// says why); the router updates
	// each request meanwhile.
	AdmissionPolicyFailed = "AdmissionPolicyFailed"
)

// Workflows (requests and Promises with spec.workflows).
const (
	// ConfigureWorkflowCompletedCondition: True when every configure
	// pipeline of the current run succeeded and its output is what the
	// router writes. Kratix's name, so dashboards built for it carry over.
	ConfigureWorkflowCompletedCondition = "ConfigureWorkflowCompleted"

	// WorkflowRunning: a pipeline's Job is running (the message names it).
	WorkflowRunning = "WorkflowRunning"
	// WorkflowCompleted: every configure pipeline succeeded.
	WorkflowCompleted = "WorkflowCompleted"
	// WorkflowFailed: a pipeline failed; the message names the container,
	// its exit code and reason. It is run again with backoff; what was
	// written before stays.
	WorkflowFailed = "WorkflowFailed"
	// WorkflowSuspended: a pipeline wrote suspend: true to
	// workflow-control.yaml; the rest waits for the next change or the
	// kratix.io/manual-reconciliation label.
	WorkflowSuspended = "WorkflowSuspended"
	// WorkflowRetrying: a pipeline asked (retryAfter) to run again later.
	WorkflowRetrying = "WorkflowRetrying"
	// WorkflowOutputInvalid: a pipeline's output cannot be written (too
	// large, a path outside its directory, a bad metadata file).
	WorkflowOutputInvalid = "WorkflowOutputInvalid"
	// InvalidWorkflow (Promises): spec.workflows cannot be run as given.
	InvalidWorkflow = "InvalidWorkflow"
)
