#!/usr/bin/env bash
# The drill commands the templates in examples/ run, in the same order, each job from a fresh clone
# of REPO (default: this repository), against its bundled drills (features/). docs/ci.md, "Trying the
# templates locally". Two CI-like runs share one history ($DRILL_HISTORY; on a bucket, set
# STORAGE_EMULATOR_HOST for an emulator):
#
#   1. nightly  github/drill-nightly.yml, gitlab/drill-nightly.gitlab-ci.yml, kubernetes/cronjob.yaml:
#               drill check; drill run --output-dir OUT
#   2. sharded  github/drill-sharded.yml, gitlab/drill-sharded.gitlab-ci.yml, kubernetes/indexed-job.yaml:
#               a clone per share: drill check; drill run --shard I/3 --output-dir SHARDS/shard-I
#               then, in another clone: drill report merge SHARDS -o OUT (or --from gs://… --wait, as the
#               Indexed Job's first pod does, when SHARDS is a gs:// prefix)
#
# Then, from the merging clone, `drill report --verify` checks both runs against the shared history.
# Usage: examples/run-like-ci.sh WORKDIR   (WORKDIR must not exist; `drill` must be on PATH)
# Environment: REPO (what to clone), DRILL_HISTORY (required), NIGHTLY_OUT (default WORKDIR/nightly-out),
#              SHARDS (default WORKDIR/shards, or gs://BUCKET/PREFIX), MERGED_OUT (default WORKDIR/merged-out).
set -uo pipefail
WORK=${1:?usage: run-like-ci.sh WORKDIR}
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
: "${DRILL_HISTORY:?set DRILL_HISTORY: the history both runs share (a path or gs://BUCKET/PREFIX/history.jsonl)}"
export DRILL_HISTORY
NIGHTLY_OUT=${NIGHTLY_OUT:-$WORK/nightly-out}
SHARDS=${SHARDS:-$WORK/shards}
MERGED_OUT=${MERGED_OUT:-$WORK/merged-out}
mkdir "$WORK" || exit 2

checkout() {  # actions/checkout, a GitLab job's clone, the image a pod starts from
  git clone --quiet "$REPO" "$WORK/$1" && cd "$WORK/$1"
}

step() { echo "== $*" >&2; }

# 1. nightly
(
  checkout nightly || exit 2
  step "nightly: drill check"
  drill check || exit 2
  step "nightly: drill run --output-dir $NIGHTLY_OUT"
  drill run --tags "not nightly" --output-dir "$NIGHTLY_OUT"  # features/nightly_*: production's backups only
)
nightly=$?
echo "nightly: exit $nightly" >&2
[ "$nightly" -le 1 ] || exit "$nightly"

# 2. sharded: three shares, each from its own clone, one after the other here (in CI, at the same time)
for share in 1 2 3; do
  (
    checkout "shard-$share" || exit 2
    step "shard $share/3: drill check"
    drill check || exit 2
    step "shard $share/3: drill run --shard $share/3 --output-dir $SHARDS/shard-$share"
    drill run --tags "not nightly" --shard "$share/3" --output-dir "$SHARDS/shard-$share"
  )
  code=$?
  echo "shard $share/3: exit $code" >&2
  [ "$code" -le 1 ] || exit "$code"
done

(
  checkout merge || exit 2
  if [[ "$SHARDS" == gs://* ]]; then
    step "merge: drill report merge --from $SHARDS --wait 10m -o $MERGED_OUT"
    drill report merge --from "$SHARDS" --wait 10m -o "$MERGED_OUT"
  else
    step "merge: drill report merge $SHARDS -o $MERGED_OUT"
    drill report merge "$SHARDS" -o "$MERGED_OUT"
  fi
  merged=$?
  echo "merge: exit $merged" >&2
  [ "$merged" -le 1 ] || exit "$merged"
  step "merge: drill report --verify (both runs, against the shared history)"
  drill report --verify || exit 3
  exit "$merged"
)
merged=$?
[ "$merged" -le 1 ] || exit "$merged"
exit $(( nightly > merged ? nightly : merged ))
