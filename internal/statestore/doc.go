// Package statestore holds what every state store shares: the Writer
// interface that the scheduler and reconcilers write through, the Change
// and Result types, and the layout of a store (layout.go), whose functions
// refuse any name that could leave its directory.
//
// Two implementations exist: gitstate (a Git branch) and bucketstate (an
// S3-compatible bucket). Callers never know which one they hold.
package statestore
