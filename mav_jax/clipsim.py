"""CLIPSIM of captioned videos, with mav_jax's CLIP (an export of the clip stage or a converted
OpenAI/OpenCLIP checkpoint).

    python -m mav_jax.clipsim --clip=exports/clip --videos=SOURCE [--num_videos=N]
        [--output_json=clipsim.json]

SOURCE is `tfds:NAME[/CONFIG]:SPLIT` (its 'video' and 'caption' features, from $TFDS_DATA_DIR)
or a folder of videos with captions.jsonl (what `python -m mav_jax.sample` writes). Prints CLIPSIM
and writes a JSON record of the number and the protocol (count, source, CLIP export and config).
"""

from __future__ import annotations

import json
import sys

from absl import app, flags

_CLIP = flags.DEFINE_string("clip", None, "CLIP export directory.")
_VIDEOS = flags.DEFINE_string("videos", None, "Captioned videos: tfds:NAME:SPLIT or a folder.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", None, "Videos to score (default: all).")
_OUTPUT = flags.DEFINE_string("output_json", "clipsim.json", "Where to write the JSON record.")
flags.mark_flags_as_required(["clip", "videos"])


def main(argv) -> None:
    del argv
    import dataclasses

    from mav_jax import cli_logging
    from mav_jax.eval.clipsim import clipsim
    from mav_jax.models.frozen_clip import FrozenClip
    from mav_jax.parallel import make_mesh

    cli_logging.setup()
    try:
        clip = FrozenClip(_CLIP.value, make_mesh({"data": -1}))
        result = clipsim(clip, _VIDEOS.value, _NUM_VIDEOS.value, progress=True)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"mav_jax.clipsim: {error}")
    record = {
        "clipsim": result.clipsim,
        "num_videos": len(result.per_video),
        "source": _VIDEOS.value,
        "clip": _CLIP.value,
        "clip_config": dataclasses.asdict(clip.config),
        "per_video": dict(zip(result.names, result.per_video, strict=False)),
    }
    print(f"CLIPSIM {result.clipsim:.4f} over {len(result.per_video)} videos")
    with open(_OUTPUT.value, "w") as f:
        json.dump(record, f, indent=1)


def cli() -> None:
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    cli()
