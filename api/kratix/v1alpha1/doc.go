// Package v1alpha1 holds Kratix's Promise, in Kratix's own group
// platform.kratix.io, so that a Kratix Promise file applies to a cluster
// running Switchyard unchanged.
//
// # Kinds
//
//   - Promise: a Kratix Promise. Switchyard does not run it as Kratix does:
//     the router imports it into a switchyard.dev Promise of the same name,
//     carrying over the fields Switchyard supports (api, dependencies,
//     destinationSelectors, workflows), and reports every other field by
//     name. See docs/from-kratix.md.
//
// The spec keeps fields its schema does not list, so that a file using any
// Kratix field applies and the router can say which ones it ignores
// instead of the API server dropping them silently.
//
// +kubebuilder:object:generate=true
// +groupName=platform.kratix.io
package v1alpha1
