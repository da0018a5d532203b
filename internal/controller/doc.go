// Package controller reconciles Promises and the requests of every
// Promise's kind.
//
// # Promises
//
// The Promise reconciler installs the request CRD embedded in the Promise
// (adding the router's status schema, status subresource, printer columns
// and spec.destinationSelector), starts a request controller for that kind
// at run time, and writes the Promise's dependencies to every matching
// destination. A Promise being deleted waits until no request of its kind
// is left (it says so in its Ready condition), then removes its
// dependencies and its CRD. Nothing is orphaned silently.
//
// # Requests
//
// One RequestReconciler per kind, working on unstructured objects:
// schedule (internal/scheduler), check the Promise's claims
// (internal/claims, fed from the kind's informer), render
// (internal/render), write through the destination's state store writer
// (internal/statestore; a Git or bucket store from
// internal/destinations.Stores), then one status patch with Scheduled,
// Written and Ready. The patch carries the resourceVersion the reconcile
// read: a status decided from a stale cache is refused and decided again,
// and status-only updates (the router's own patches) wake no reconcile. With a table probe, Ready needs the
// table to be the one ACK reports for the request's own Table object
// (internal/probe). A finalizer removes the request's files when it is
// deleted, and releases its claims when it goes.
//
// # Moves
//
// A request whose destination is deleted leaves it only safely (move.go):
// with cleanup: all its copy there is rewritten with the Promise's retain
// annotations, then removed, each step applied by Flux there, before it is
// written elsewhere; otherwise, or with the Promise's policy Stay, it
// stays and reports DestinationLost.
//
// # Placements after a start
//
// Each request controller seeds the placement index from its informer
// (request_placements.go). A request that needs a destination chosen waits
// (Scheduled=False, Progressing) until every serving Promise's requests
// are loaded, so capacity is counted from every placed request.
//
// # Orphans
//
// The Sweeper (sweep.go) removes request directories no live request owns,
// when this replica starts leading and every --sweep-interval. It keeps
// whatever it cannot prove orphaned: see its doc for the rules.
package controller
