#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from Go modules
# into a cache outside the repo, keyed by version, and prints its directory.
# Point KUBEBUILDER_ASSETS at that directory. A present binary is not rebuilt.
set -euo pipefail

KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.13

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SWITCHYARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}
dir="$cache/controlplane/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$dir"

build() { # name module-dir package
  local out="$dir/$1"
  [ -x "$out" ] && return 0
  local start=$SECONDS
  echo "controlplane: building $1 from Go modules (cold: minutes on 2 cores)..." >&2
  (cd "$here/tools/$2" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out.tmp" "$3")
  mv "$out.tmp" "$out" # atomic, so an interrupted build is never taken as done
  echo "controlplane: built $1 in $((SECONDS - start))s" >&2
}

build etcd etcd .
build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
echo "$dir"
