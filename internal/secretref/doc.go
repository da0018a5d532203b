// Package secretref guards the Secrets the router reads on behalf of
// cluster-scoped objects. A GitStateStore, BucketStateStore or Destination
// names a Secret by namespace and name; without a guard, anyone who may
// create such an object could have the router read, and send elsewhere,
// the credentials of any namespace. As Flux does with
// --no-cross-namespace-refs, the router reads Secrets from its own
// namespace only, unless it runs with --allow-cross-namespace-refs (and an
// admin grants it get on Secrets in the other namespaces).
package secretref
