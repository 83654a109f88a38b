#!/usr/bin/env bash
# `npm run lint`: Biome (lint + format check), the rooms' import rules (dependency-cruiser) and the
# import-cycle check (madge). Every check runs even when an earlier one fails, so one run reports
# all problems; the exit status is non-zero if any failed. `npm run format` fixes the formatting.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
run() {
  local name=$1; shift
  echo "== $name: $*"
  "$@" || failed+=("$name")
}
run biome npx --no-install biome check .
run deps npm run -s lint:deps
run cycles npm run -s lint:cycles
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint passed"
