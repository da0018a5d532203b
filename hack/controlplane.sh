#!/usr/bin/env bash
# Finds or makes the envtest control plane (kube-apiserver and etcd, and the
# kubectl of the same version that the tests drive it with) in a cache
# outside the repo, keyed by version, and prints its directory; point
# KUBEBUILDER_ASSETS at it. Where the network allows, it first takes the
# published envtest archive (10 s to find it, sha512 checked against
# controller-tools' release index); otherwise, or with SWITCHYARD_OFFLINE=1,
# it builds all three from Go modules. It says which path it took.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.13
ENVTEST_INDEX=https://raw.githubusercontent.com/kubernetes-sigs/controller-tools/HEAD/envtest-releases.yaml

built="$cache/controlplane/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
published="$cache/controlplane/envtest-$KUBERNETES_VERSION"

have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ]; }

# download fetches the published archive into $published, or fails.
download() {
  [ "${SWITCHYARD_OFFLINE:-}" = 1 ] && return 1
  command -v curl >/dev/null || return 1
  local name index hash url tmp
  name="envtest-$KUBERNETES_VERSION-linux-$(go env GOARCH).tar.gz"
  index=$(curl -fsSL --max-time 10 "$ENVTEST_INDEX" 2>/dev/null) || return 1
  # The index lists, per archive name, its hash and then its selfLink.
  hash=$(awk -v n="$name:" '$1 == n { getline; print $2; exit }' <<<"$index")
  url=$(awk -v n="$name:" '$1 == n { getline; getline; print $2; exit }' <<<"$index")
  [ -n "$hash" ] && [ -n "$url" ] || return 1
  tmp=$(mktemp -d)
  if ! curl -fsSL --max-time 180 -o "$tmp/envtest.tar.gz" "$url" ||
    ! echo "$hash  $tmp/envtest.tar.gz" | sha512sum -c --quiet - >/dev/null 2>&1; then
    rm -rf "$tmp"
    return 1
  fi
  tar -xzf "$tmp/envtest.tar.gz" -C "$tmp"
  mkdir -p "$published"
  mv "$tmp/controller-tools/envtest/kube-apiserver" "$tmp/controller-tools/envtest/etcd" "$tmp/controller-tools/envtest/kubectl" "$published/"
  rm -rf "$tmp"
}

if have "$built"; then
  echo "$built"
elif have "$published"; then
  echo "$published"
elif download; then
  echo "controlplane: using the published envtest $KUBERNETES_VERSION archive (sha512 checked)" >&2
  echo "$published"
else
  echo "controlplane: no published envtest archive reachable; building from Go modules" >&2
  mkdir -p "$built"
  build "$built/etcd" etcd .
  build "$built/kube-apiserver" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
  build "$built/kubectl" kube-apiserver k8s.io/kubernetes/cmd/kubectl
  echo "$built"
fi
