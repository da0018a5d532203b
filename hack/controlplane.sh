#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from Go modules
# into a cache outside the repo, keyed by version, and prints its directory.
# Point KUBEBUILDER_ASSETS at that directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.13

dir="$cache/controlplane/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$dir"
build "$dir/etcd" etcd .
build "$dir/kube-apiserver" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
echo "$dir"
