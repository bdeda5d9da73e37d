#!/usr/bin/env bash
# Show the slice (state, health, accelerator), the queued resource with --queued, and whether
# mav_jax.train runs on each worker.
#
# Usage: launch/status.sh --project=P --zone=Z --tpu_name=N [--queued] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "queued" "$@"
setup_tpu
if is_true "$QUEUED"; then
  run gcloud compute tpus queued-resources describe "$TPU_NAME" "${LOCATION[@]}" \
    --format='table(name.basename(), state.state, tpu.nodeSpec[0].node.acceleratorType)'
fi
run gcloud compute tpus tpu-vm describe "$TPU_NAME" "${LOCATION[@]}" \
  --format='table(name.basename(), state, health, acceleratorType, runtimeVersion)'
tpu_ssh all "hostname | tr '\n' ' '; \
pgrep -af \"$TRAIN_PATTERN\" || echo 'mav_jax.train not running'"
