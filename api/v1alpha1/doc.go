// Package v1alpha1 holds the Switchyard API: GitStateStore,
// BucketStateStore, Destination and Promise, in the group switchyard.dev.
//
// # Kinds
//
//   - GitStateStore: a Git repository (and branch and path within it) that
//     the router commits rendered manifests into.
//   - BucketStateStore: an S3-compatible bucket (and key prefix) that the
//     router writes rendered manifests into; Flux reads it as a Bucket.
//   - Destination: a cluster that reads one directory of a state store with
//     Flux. Selected by its labels.
//   - Promise: a request API (an embedded CustomResourceDefinition) plus the
//     templates that render one request into manifests, and the dependencies
//     every matching destination receives.
//
// Conditions types and reasons for every kind, including the requests the
// router reconciles for a Promise, are listed in conditions.go.
//
// +kubebuilder:object:generate=true
// +groupName=switchyard.dev
package v1alpha1
