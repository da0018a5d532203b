// Package shutdown keeps the router's stop quiet.
//
// # Reconcilers
//
// When the manager stops it cancels the context of every reconcile in
// flight. Those reconciles then fail (a status patch, a Git write, a read
// of a destination, all with the cancelled context), and controller-runtime
// logs each failure as "Reconciler error" with a stack trace, though
// nothing went wrong. Quiet wraps a reconciler so that an error returned
// after its context was cancelled is logged at debug level and dropped:
// the work is not lost, since the next router to lead reconciles every
// object again.
package shutdown
