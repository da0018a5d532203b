// Package destinations reconciles state stores (GitStateStores and
// BucketStateStores) and Destinations.
//
// # State stores
//
// A store reconciler reads the store's Secret (by name, with an uncached
// reader, so the router never lists Secrets), opens one statestore.Writer
// per store in Stores (gitstate for a repository, bucketstate for a
// bucket), and checks the store: a fetch of the branch, or a listing of the
// bucket and a write check. Both share StoreReconciler. Every other
// reconciler writes through Stores and does not know which kind it holds.
//
// # Destinations
//
// The Destination reconciler checks the store, refuses a path another
// destination of the same store already owns, and writes a canary file into
// the destination's dependencies/ and resources/ directories, so an
// operator can see that Flux reads them and neither directory ever vanishes
// from the store. On deletion it applies the cleanup policy (cleanup.go):
// none lets the destination go and keeps the directory; all waits until
// its requests have left (they move themselves), removes everything but
// the canaries, waits until Flux on the destination applied that (the
// prune), and only then removes the directory and lets it go.
package destinations
