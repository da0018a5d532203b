#!/usr/bin/env bash
# Installs dynalite (a DynamoDB wire endpoint on LevelDB) from npm with the
# lockfile in hack/tools/dynalite into a cache outside the repo, and prints
# the path of its executable.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v npm >/dev/null || { echo "dynalite.sh: npm is required (Node 20 or newer)" >&2; exit 1; }
lock="$here/tools/dynalite/package-lock.json"
dir="$cache/dynalite/$(sha256sum "$lock" | cut -c1-12)"
if [ ! -x "$dir/node_modules/.bin/dynalite" ]; then
  echo "switchyard: installing dynalite from npm..." >&2
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cp "$here/tools/dynalite/package.json" "$lock" "$dir.tmp/"
  (cd "$dir.tmp" && npm ci --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$dir/node_modules/.bin/dynalite"
