#!/usr/bin/env bash
# Export a run's newest checkpoint (EMA parameters + config) with `python -m mav_jax.export`,
# on worker 0, on its CPU (the TPU chips stay free for training).
#
# Usage: launch/export.sh --project=P --zone=Z --tpu_name=N
#            (--bucket=B --run=NAME | --workdir=gs://...) [--output=gs://...] [--dry-run]
#
#   --workdir  MAV_WORKDIR: the training run; default gs://BUCKET/runs/RUN
#   --output   MAV_OUTPUT: where the export goes; default gs://BUCKET/exports/RUN
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "bucket run workdir output" "$@"
setup_tpu
resolve_workdir
if [[ -z $OUTPUT ]]; then
  [[ -n $BUCKET && -n $RUN ]] ||
    die "missing required parameter(s): --output (or MAV_OUTPUT), or --bucket and --run"
  OUTPUT="gs://${BUCKET#gs://}/exports/$RUN"
fi
tpu_ssh 0 "$REMOTE_ENV; JAX_PLATFORMS=cpu $(quote_args python -m mav_jax.export \
  --workdir="$WORKDIR" --output="$OUTPUT")"
