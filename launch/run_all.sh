#!/usr/bin/env bash
# Create the slice, install mav_jax on every worker and start training: create.sh (with --wait
# when --queued), install.sh and train.sh in a row, with the union of their flags.
#
# Usage: launch/run_all.sh --project=P --zone=Z --tpu_name=N --accelerator=TYPE
#            --config=configs/STAGE.py:VARIANT (--bucket=B --run=NAME | --workdir=gs://...)
#            [--data_dir=gs://...] [--queued] [--spot | --preemptible | --reserved]
#            [--runtime_version=V] [--git_url=URL [--git_ref=REF]] [--python=3.12]
#            [--config.FIELD=VALUE ...] [--dry-run] [-- MORE_TRAIN_FLAGS]
#
# See create.sh, install.sh and train.sh --help for the flags (each also read from MAV_*).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "accelerator runtime_version queued spot preemptible reserved git_url git_ref python \
config bucket run workdir data_dir overrides" "$@"
setup_tpu
require accelerator config  # checked here, before a slice exists
resolve_workdir
resolve_data_dir

for flag in "${!DEFAULTS[@]}"; do
  var=${flag^^}
  export "MAV_$var=${!var}"
done
export MAV_WAIT=1  # install.sh needs the slice
"$LAUNCH_DIR/create.sh"
"$LAUNCH_DIR/install.sh"
"$LAUNCH_DIR/train.sh" "${OVERRIDES[@]}" -- "${EXTRA_ARGS[@]}"
