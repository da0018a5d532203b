// Package scheduler decides where requests go. It is pure: given a request,
// its selectors and the destinations with their load, it returns a decision
// and a reason a person can read. No I/O, no clocks, no randomness, so the
// same inputs always give the same answer.
//
// # Semantics
//
// A destination is a candidate for a request when its labels match every
// selector (the Promise's and the request's own), it is not being deleted,
// it is schedulable (not cordoned), Ready, and below its capacity. A
// destination with StrictMatchLabels only takes requests whose selectors name
// at least one label.
//
// Among candidates the least loaded wins; ties go to the smallest FNV-1a hash
// of request key and destination name, which spreads equal destinations
// evenly and stably.
//
// A placed request is sticky. If its destination still exists it stays there:
// with reason Placed while it matches, Misplaced when it no longer does. Only
// when its destination is gone or being deleted is it rescheduled.
//
// # Index
//
// Schedule and Targets look at every destination. An Index, built once per
// change of the destinations, gives the same answers from per-label sets
// of destinations (a selector is a few bitwise operations), and hashes only
// the least-loaded candidates, resuming each name's hash from the prefix it
// shares with the one before. TestIndexAgreesWithScan holds the two to the
// same decisions.
package scheduler
