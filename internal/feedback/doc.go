// Package feedback follows Flux on destination clusters. For each
// Destination with a kubeConfigSecretRef it watches the destination's
// Flux source (a GitRepository, or a Bucket for a BucketStateStore) and
// Kustomizations (named by the Destination), keeps what
// they report in memory, tells subscribed controllers when it changes, and
// asks Flux to fetch at once after the router commits ("nudges").
// Kubeconfigs go through package kubeconfig first: one it refuses is never
// used, and its State is Refused.
//
// State.Applied turns what Flux reports into the Applied condition of a
// request or destination: is the commit that carries it, or a later one,
// applied?
package feedback
