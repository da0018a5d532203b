// Package ownstatus keeps a controller's own status writes from waking it
// again, without losing any of them.
//
// Changed drops the update events that change status alone, which are
// the controller's own patches. That leaves one risk: a reconcile that
// reads a copy from a cache that has not yet seen the controller's last
// patch, decides the status that copy shows, and skips the write as
// unchanged. Nothing would wake it again. Pending remembers each own
// write until the cache shows it, so the caller writes (with the copy's
// resourceVersion, and is refused) instead of skipping.
package ownstatus
