#!/usr/bin/env bash
# Build a video or image collection on Google Cloud Dataflow: `python -m mav_jax.data.build` with
# the DataflowRunner, reading tar shards, a manifest or a folder in GCS and writing the TFDS
# dataset to the bucket the TPU workers read. Runs here; Dataflow installs mav_jax on its workers
# from this checkout's setup.py.
#
# Usage: launch/build_data.sh --project=P --region=R --source='gs://B/shards/{00000..00999}.tar'
#            --name=NAME (--bucket=B | --data_dir=gs://...) [--dataset=video_collection]
#            [--frame_size=64] [--max_workers=100] [--machine_type=n2-standard-8]
#            [--job_name=mav-build-NAME] [--dry-run] [-- more mav_jax.data.build flags]
#
#   --region      MAV_REGION: the Dataflow region, e.g. us-central1 (next to the bucket)
#   --dataset     MAV_DATASET: video_collection or image_collection (video_collection)
#   --source      MAV_SOURCE: tar shards (brace pattern), a .csv/.tsv/.jsonl manifest or a folder
#   --name        MAV_NAME: the dataset's config name: train with --config.data.dataset=DATASET/NAME
#   --data_dir    MAV_DATA_DIR: where the dataset goes (gs://BUCKET/tensorflow_datasets)
#   --frame_size  MAV_FRAME_SIZE: stored frame size (64; 256 also feeds SR^t_l)
#   --max_workers, --machine_type: Dataflow's autoscaling limit and worker type
# Temporary and staging files go to gs://BUCKET/dataflow/ (BUCKET: the one --data_dir is in).
# Needs apache-beam[gcp] here (pip install 'apache-beam[gcp]') and the Dataflow API enabled.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_flags "region bucket data_dir dataset source name frame_size max_workers machine_type job_name" "$@"
require project region source name
[[ $DATASET == video_collection || $DATASET == image_collection ]] ||
  die "--dataset must be video_collection or image_collection, got '$DATASET'"
resolve_data_dir
[[ $DATA_DIR == gs://* ]] || die "--data_dir must be a gs:// path (Dataflow writes there): $DATA_DIR"
DATA_BUCKET=${DATA_DIR#gs://}
WORK="gs://${DATA_BUCKET%%/*}/dataflow"  # temporary and staging files, in the data's bucket
JOB_NAME=${JOB_NAME:-mav-build-${NAME//_/-}}
OPTIONS=(
  "project=$PROJECT" "region=$REGION" "job_name=${JOB_NAME,,}"
  "temp_location=$WORK/tmp" "staging_location=$WORK/staging"
  "setup_file=$REPO_DIR/setup.py" "max_num_workers=$MAX_WORKERS" "machine_type=$MACHINE_TYPE"
)
run python -m mav_jax.data.build "$DATASET" --data_dir="$DATA_DIR" --source="$SOURCE" \
  --name="$NAME" --frame_size="$FRAME_SIZE" --beam_runner=DataflowRunner \
  --beam_pipeline_options="$(IFS=,; echo "${OPTIONS[*]}")" "${EXTRA_ARGS[@]}"
