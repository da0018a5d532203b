// Package placement keeps the router's in-memory view of where requests
// are: which destination each placed request is on, which requests wait
// for a destination, and the last commit per destination.
//
// It lets a destination event wake exactly the requests it concerns (those
// placed on it and those waiting) instead of every request, and gives the
// scheduler each destination's load without listing requests. It is
// rebuilt from request status as the caches fill after a restart.
package placement
