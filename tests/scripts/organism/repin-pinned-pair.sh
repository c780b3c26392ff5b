#!/usr/bin/env bash
# Re-pins the organism pair shipped under tests/DeepAlign.Core.Tests/Fixtures/organism/pinned/: builds the default
# pair (default world, default OrganismRecipe, current OrganismRecipe.CodeVersion) cold, in an empty cache, with the
# `deepalign organism` job, and replaces the shipped organism-KEY/ folder by the new base/, aligned/ and build.json
# (build.json carries the SHA-256 of both weight files). See docs/organism.md, "Keeping the pinned pair honest".
#
#   tests/scripts/organism/repin-pinned-pair.sh           # --quick evaluation into a temporary folder (v2: pair build ~16 min on a loaded machine + ~8 min)
#   tests/scripts/organism/repin-pinned-pair.sh --full    # full evaluation written to docs/ (refreshes docs/results.md)
#
# Afterwards: run the organism tests (PinnedPairClaimsTests check claims 1-2 on the new pair) and commit the folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ "${1:-}" == "--full" ]]; then args=(--output docs); else args=(--quick --output "$work/out"); fi

dotnet run --project samples/DeepAlign.Cli -c Release -- organism --cache "$work/cache" "${args[@]}"

built=("$work"/cache/organism-*)
if [[ ${#built[@]} -ne 1 || ! -f "${built[0]}/build.json" ]]; then
  echo "expected exactly one built pair under $work/cache, found: ${built[*]}" >&2
  exit 1
fi
name=$(basename "${built[0]}")
pinned=tests/DeepAlign.Core.Tests/Fixtures/organism/pinned
git rm -r -q --ignore-unmatch "$pinned"/organism-* >/dev/null
rm -rf "$pinned"/organism-*
mkdir -p "$pinned/$name"
cp -r "${built[0]}/base" "${built[0]}/aligned" "${built[0]}/build.json" "$pinned/$name/"
echo "Pinned $pinned/$name:"
(cd "$pinned/$name" && sha256sum base/model.safetensors aligned/model.safetensors)
echo "Next: dotnet test tests/DeepAlign.Core.Tests -c Release --filter \"FullyQualifiedName~Organism\"; git add $pinned; git commit"
