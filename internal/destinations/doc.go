// Package destinations reconciles GitStateStores and Destinations.
//
// # State stores
//
// The GitStateStore reconciler reads the store's Secret (by name, with an
// uncached reader, so the router never lists Secrets), opens one
// gitstate.Writer per store in Stores, and fetches the branch as a cheap
// check that the repository is reachable with those credentials. Every
// other reconciler writes through Stores.
//
// # Destinations
//
// The Destination reconciler checks the store, refuses a path another
// destination of the same store already owns, and writes a canary file into
// the destination's dependencies/ and resources/ directories, so an
// operator can see that Flux reads them and neither directory ever vanishes
// from the repository. On deletion it applies the cleanup policy: none
// keeps the directory, all removes it.
package destinations
