#!/usr/bin/env bash
# Run a benchmark script of this checkout against the package as it was at another commit,
# for before/after figures measured the same way on the same machine:
#
#   benchmarks/at_commit.sh 64f2eeb benchmarks/env_throughput.py --quick
#
# The commit's tree is exported to a temporary folder and laid out as the `ipwarmup`
# package with symlinks (pyproject maps core/ -> ipwarmup, envs/ -> ipwarmup.envs, ...);
# PYTHONPATH puts it before the editable install of this checkout. The benchmark script
# itself is this checkout's, so both sides print the same tables.
set -euo pipefail
if (($# < 2)); then
  echo "usage: benchmarks/at_commit.sh COMMIT SCRIPT [ARGS...]" >&2
  exit 2
fi
commit="$1"
shift
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/src" "$root/pkg/ipwarmup"
git -C "$repo" archive "$commit" | tar -x -C "$root/src"
for f in "$root"/src/core/*; do ln -s "$f" "$root/pkg/ipwarmup/"; done
for d in envs agents training serving mta configs; do
  [ -e "$root/src/$d" ] && ln -s "$root/src/$d" "$root/pkg/ipwarmup/$d"
done
echo "ipwarmup from commit $(git -C "$repo" rev-parse --short "$commit")" >&2
PYTHONPATH="$root/pkg${PYTHONPATH:+:$PYTHONPATH}" python "$@"
