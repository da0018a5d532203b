//go:build tools

// Package tools pins the kube-apiserver used by the envtest control plane,
// and the kubectl of the same version that tests apply manifests with.
// It is built by hack/controlplane.sh; nothing imports it.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
