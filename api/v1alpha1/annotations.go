package v1alpha1

// Finalizer is set by the router on Destinations, Promises and requests so
// it can remove their files from the state store before they go.
const Finalizer = "switchyard.dev/finalizer"

// SkipCleanupAnnotation, set to "true" on a Destination, Promise or request
// that is being deleted, lets it go without removing its files from the
// state store. It is the escape hatch when the store is unreachable for
// good. A request's files left so are removed by the router's orphan sweep
// once the store can be written again (a Promise's dependencies and a
// Destination's directory stay until removed by hand).
const SkipCleanupAnnotation = "switchyard.dev/skip-cleanup"

// PromiseLabel marks the request CRD a Promise installed.
const PromiseLabel = "switchyard.dev/promise"

// ImportedFromLabel marks a Promise the router imported; the value is the
// group of what it came from (platform.kratix.io). The Promise's controller
// ownerReference names the object itself.
const ImportedFromLabel = "switchyard.dev/imported-from"

// SkipCleanup reports whether annotations ask to skip cleanup.
func SkipCleanup(annotations map[string]string) bool {
	return annotations[SkipCleanupAnnotation] == "true"
}

// RewriteAnnotation, set or changed on a GitStateStore or
// BucketStateStore, makes the router look at every request, Promise
// dependency set and canary of the store's destinations again and write
// back whatever the store lacks or has changed: a full rewrite on demand,
// for example after the repository or bucket was wiped. The value is free; a timestamp is usual.
const RewriteAnnotation = "switchyard.dev/rewrite"

// FluxAppliedAnnotation, set on a Destination the router cannot see (no
// spec.kubeConfigSecretRef, or its kubeconfig does not work), is a
// person's word for what the router cannot read itself: the revision Flux
// on that cluster applied last (the resources Kustomization's
// status.lastAppliedRevision, main@sha1:<hash> or the bare hash). Moves
// off the destination and its cleanup wait for it, step by step; the
// router ignores it while it can see Flux there.
const FluxAppliedAnnotation = "switchyard.dev/flux-applied-revision"

// ReleasedFromAnnotation, set on a request to the name of its destination,
// is a person's word that the request's copy there is gone (removed with
// its resources kept, or the cluster is gone). The router then places the
// request elsewhere although it could not remove that copy itself: the
// destination was deleted with cleanup: none, or is gone.
const ReleasedFromAnnotation = "switchyard.dev/released-from"
