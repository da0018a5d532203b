// Package inspect answers questions about what the router did or would do,
// for the `router state ls` and `router place --dry-run` commands: it reads
// the platform cluster and the state store and writes nothing.
package inspect
