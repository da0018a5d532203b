// Package placement keeps the router's in-memory view of where requests
// are: which destination each placed request is on, which requests wait
// for a destination, and the last commit per destination.
//
// It lets a destination event wake exactly the requests it concerns (those
// placed on it and those waiting) instead of every request, and gives the
// scheduler each destination's load without listing requests.
//
// # After a start
//
// The index starts empty. Each request controller seeds it (Seed) from its
// informer, with the status.destination of every cached request, and
// registers when that informer has synced (SetPrimed). Requests that need
// a destination chosen wait until every serving Promise is Primed, so
// loads are never counted too low.
package placement
