#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from Go modules
# (hack/tools/flux pins them) into a cache outside the repo, copies their
# CRDs from the same modules into crds/, and prints the directory. Flux
# publishes these controllers as container images only (their releases
# carry manifests, no binaries), so there is no prebuilt path to try.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLUX_VERSION=v1.9.6 # both controllers; v1.10 needs Go 1.27

dir="$cache/flux/$FLUX_VERSION"
mkdir -p "$dir/crds"
build "$dir/source-controller" flux github.com/fluxcd/source-controller
build "$dir/kustomize-controller" flux github.com/fluxcd/kustomize-controller
for m in source-controller kustomize-controller; do
  src=$(cd "$here/tools/flux" && go list -m -f '{{.Dir}}' "github.com/fluxcd/$m")
  cp "$src"/config/crd/bases/*.yaml "$dir/crds/"
done
chmod -R u+w "$dir/crds"
echo "$dir"
