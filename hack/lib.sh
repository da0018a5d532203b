# shellcheck shell=bash
# Shared by the hack/*.sh scripts that build test dependencies into a cache
# outside the repo, keyed by version. Source it; it sets $here and $cache.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
cache=${SWITCHYARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}

# build <out> <tools module dir> <package>: go build once; a present binary
# is not rebuilt, and an interrupted build is never taken as done.
build() {
  local out=$1
  [ -x "$out" ] && return 0
  local start=$SECONDS
  echo "switchyard: building $(basename "$out") from Go modules (cold: minutes on 2 cores)..." >&2
  (cd "$here/tools/$2" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out.tmp" "$3")
  mv "$out.tmp" "$out"
  echo "switchyard: built $(basename "$out") in $((SECONDS - start))s" >&2
}
