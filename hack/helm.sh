#!/usr/bin/env bash
# Builds Helm from Go modules into a cache outside the repo, keyed by
# version, and prints the binary's path: the chart test lints and renders
# charts/switchyard with it. Helm's releases are downloads from its own
# site, which this project's machines cannot reach; its module is served.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION=v3.22.0

dir="$cache/helm/$HELM_VERSION"
if [ ! -x "$dir/helm" ]; then
  start=$SECONDS
  echo "switchyard: building helm $HELM_VERSION from Go modules (cold: minutes on 2 cores)..." >&2
  rm -rf "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath -ldflags=-s "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$dir"
  mv "$dir.tmp/helm" "$dir/helm"
  rm -rf "$dir.tmp"
  echo "switchyard: built helm in $((SECONDS - start))s" >&2
fi
echo "$dir/helm"
