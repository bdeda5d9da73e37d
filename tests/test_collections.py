"""User collections at scale: tar shards, manifests and folders built by Apache Beam into clip
records; bad inputs skipped and counted; the stages read the result and train on it."""

import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import ROOT
from PIL import Image
from trainer_helpers import subprocess_env, tiny_config

from mav_jax.data.builders import build
from mav_jax.data.clip_cutting import cut_clips
from mav_jax.data.clips import decode_frame
from mav_jax.data.loader import transform_record, video_source
from mav_jax.data.manifest import ManifestEntry, read_manifest
from mav_jax.data.webdataset import expand_braces

CLIP_FRAMES = 29  # the tiny D^t's longest span: 8 frames at skip 4
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _gradient_video(frames: int, height: int = 48, width: int = 64, shift: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [
            np.stack([(x * 4 + t * shift) % 256, y * 4 % 256, np.full_like(x, 128)], -1)
            for t in range(frames)
        ]
    ).astype(np.uint8)


def _mp4(frames: int, fps: int = 10, noise: bool = False, shift: int = 3) -> bytes:
    import av

    video = _gradient_video(frames, shift=shift)
    if noise:
        video = np.random.default_rng(0).integers(0, 256, video.shape, dtype=np.uint8)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_gradient_video(1, 40, 60)[0]).save(buffer, format="JPEG")
    return buffer.getvalue()


def _audio_only() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _write_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two video2dataset-style shards of good, corrupt and incomplete samples; a third is named
    by the pattern but missing."""
    folder = tmp_path_factory.mktemp("shards")
    good = _mp4(30)
    for shard in range(2):
        k = f"{shard:02d}"
        _write_tar(
            folder / f"{shard:05d}.tar",
            {
                f"{k}00.mp4": good,  # 30 frames: one clip
                f"{k}00.txt": f"stripes {shard}".encode(),
                f"{k}00.json": json.dumps({"url": f"https://x/{k}00.mp4", "size": 1}).encode(),
                f"{k}01.mp4": _mp4(60, shift=5),  # 60 frames: two clips
                f"{k}01.txt": b"faster stripes",
                f"{k}02.jpg": _jpeg(),
                f"{k}02.txt": b"a striped card",
                f"{k}03.mp4": good[: len(good) // 3],  # truncated
                f"{k}03.txt": b"broken",
                f"{k}04.mp4": good,  # no caption
                f"{k}05.txt": b"a caption alone",
                f"{k}06.mp4": b"",
                f"{k}06.txt": b"nothing",
                f"{k}07.mp4": _mp4(10),  # too short for one clip
                f"{k}07.txt": b"brief",
            },
        )
    return str(folder / "{00000..00002}.tar")


def _build_cli(dataset: str, *flags: str) -> subprocess.CompletedProcess:
    """`python -m mav_jax.data.build DATASET FLAGS...`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mav_jax.data.build", dataset, *flags],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _records(data_dir: str, dataset: str, split: str) -> list[tuple]:
    source = video_source(dataset, split, data_dir)
    return sorted(
        (
            r["key"].decode(),
            int(r.get("start_frame", 0)),
            r["caption"].decode(),
            r["url"].decode(),
            int(r.get("num_frames", 1)),
            bytes(r["video"]) if isinstance(r["video"], bytes) else tuple(r["video"]),
        )
        for r in source
    )


def _skip_counts(data_dir: str, dataset: str) -> dict:
    return dict(tfds.builder(dataset, data_dir=data_dir).info.metadata["skipped"]["counts"])


def test_shard_patterns_expand_like_the_downloaders_name_them():
    assert expand_braces("s/{00008..00011}.tar") == [f"s/{n:05d}.tar" for n in range(8, 12)]
    assert expand_braces("{a,b}/{1..2}.tar") == ["a/1.tar", "a/2.tar", "b/1.tar", "b/2.tar"]
    with pytest.raises(ValueError, match="backwards"):
        expand_braces("{3..1}.tar")


def test_clips_are_cut_back_to_back_never_past_the_end():
    frames = [np.full((2, 2, 3), t, np.uint8) for t in range(100)]
    clips = list(cut_clips(iter(frames), fps=25.0, clip_frames=29))
    assert [(c.start_frame, c.start_time) for c in clips] == [(0, 0.0), (29, 1.16), (58, 2.32)]
    assert [int(c.frames[0, 0, 0, 0]) for c in clips] == [0, 29, 58]
    assert all(c.frames.shape == (29, 2, 2, 3) for c in clips)  # frames 87..99 make no clip
    overlapping = list(cut_clips(iter(frames), 10.0, 40, stride=30, max_clips=2))
    assert [(c.start_frame, int(c.frames[-1, 0, 0, 0])) for c in overlapping] == [(0, 39), (30, 69)]
    assert list(cut_clips(iter(frames[:28]), 25.0, 29)) == []  # shorter than one clip


def test_two_beam_workers_build_the_same_clips_and_skips_as_one_process(shards, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    settings = dict(name="unit", source=shards, frame_size=32, clip_frames=CLIP_FRAMES)
    build("video_collection", one, collection=settings)
    build("video_collection", two, collection=settings, pipeline_options=MULTI_PROCESS)

    records = _records(one, "video_collection/unit", "video")
    assert records == _records(two, "video_collection/unit", "video")
    assert [(key, start, caption) for key, start, caption, *_ in records] == [
        ("0000", 0, "stripes 0"),
        ("0001", 0, "faster stripes"),
        ("0001", 29, "faster stripes"),
        ("0100", 0, "stripes 1"),
        ("0101", 0, "faster stripes"),
        ("0101", 29, "faster stripes"),
    ]
    assert records[0][3] == "https://x/0000.mp4" and {r[4] for r in records} == {CLIP_FRAMES}
    expected = {
        "no media": 4,  # the JPEG samples, and a caption alone, per shard
        "unreadable": 2,
        "no caption": 2,
        "empty file": 2,
        "too short": 2,
        "unreadable shard": 1,  # 00002.tar is missing
    }
    assert _skip_counts(one, "video_collection/unit") == expected
    assert _skip_counts(two, "video_collection/unit") == expected
    sample = tfds.builder("video_collection/unit", data_dir=two).info.metadata["skipped"]["samples"]
    assert sample["unreadable shard"][0].startswith(shards.replace("{00000..00002}", "00002"))


def test_a_manifest_build_through_the_cli_skips_every_kind_of_bad_video(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    good = _mp4(30)
    files = {
        "long.mp4": _mp4(100, fps=25),
        "good.mp4": good,
        "zero.mp4": b"",
        "truncated.mp4": good[: len(good) // 2],
        "text.mp4": b"not a video at all " * 20,
        "audio.mp4": _audio_only(),
        "codec.mp4": good.replace(b"avc1", b"zzzz"),  # a codec FFmpeg has no decoder for
        "short.mp4": _mp4(10),
        "big.mp4": _mp4(30, noise=True),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    limit = max(len(d) for n, d in files.items() if n != "big.mp4") + 1
    assert len(files["big.mp4"]) > limit
    rows = [{"videoid": n.split(".")[0], "path": f"videos/{n}", "name": n} for n in files]
    rows.append({"videoid": "gone", "path": "videos/missing.mp4", "name": "missing"})
    manifest = tmp_path / "webvid.jsonl"
    manifest.write_text("\n".join(json.dumps({**r, "duration": "PT00H00M10S"}) for r in rows))
    data_dir = tmp_path / "tfds"
    done = _build_cli(
        "video_collection",
        f"--data_dir={data_dir}",
        f"--source={manifest}",
        "--name=webvid",
        "--frame_size=32",
        f"--clip_frames={CLIP_FRAMES}",
        f"--max_bytes={limit}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "video_collection/webvid/2.0.0 video: 4 examples" in done.stdout
    assert "skipped 8 input(s)" in done.stdout
    source = video_source("video_collection/webvid", "video", str(data_dir))
    clips = sorted(
        (r["key"].decode(), int(r["start_frame"]), round(float(r["start_time"]), 4)) for r in source
    )
    assert clips == [("good", 0, 0.0), ("long", 0, 0.0), ("long", 29, 1.16), ("long", 58, 2.32)]
    assert {float(r["fps"]) for r in source} == {10.0, 25.0}
    assert json.loads(source[0]["metadata"]) == {"duration": "PT00H00M10S"}
    assert _skip_counts(str(data_dir), "video_collection/webvid") == {
        "empty file": 1,
        "unreadable": 3,  # truncated, text, missing
        "no video stream": 1,
        "unsupported codec": 1,
        "too short": 1,
        "oversized": 1,
    }


def test_bad_build_settings_are_clear_errors_through_the_cli(tmp_path):
    done = _build_cli(
        "video_collection",
        f"--data_dir={tmp_path}",
        f"--source={tmp_path}/none",
        "--clip_frames=0",
    )
    assert done.returncode == 1 and "error: --clip_frames must be >= 1" in done.stderr


@pytest.mark.parametrize("frame_format", ["h264", "jpeg"])
def test_the_video_stages_read_clip_records(shards, tmp_path, frame_format):
    from mav_jax.configs import interpolation, keyframes, sr_low
    from mav_jax.stages import stage_from_config

    data_dir = str(tmp_path)
    settings = dict(
        name="unit",
        source=shards,
        frame_size=32,
        clip_frames=CLIP_FRAMES,
        frame_format=frame_format,
    )
    build("video_collection", data_dir, collection=settings)
    record = video_source("video_collection/unit", "video", data_dir)[0]
    if frame_format == "jpeg":  # a 32-pixel JPEG decodes at half size for a 16-pixel stage
        assert decode_frame(record["video"][0], 16).shape == (16, 16, 3)
        assert decode_frame(record["video"][0], 17).shape == (32, 32, 3)
    shapes = {}
    for name, module, overrides in [
        ("D^t", keyframes, {"phase": "video"}),
        ("↑F", interpolation, {}),
        ("SR^t_l", sr_low, {}),
    ]:
        config = module.get_config("tiny")
        config.update_from_flattened_dict(overrides)
        config.data.dataset, config.data.data_dir = "video_collection/unit", data_dir
        stage = stage_from_config(config)
        example = transform_record(stage.operations(), record, np.random.default_rng(0))
        size = stage.resolution
        shapes[name] = example["video"].shape
        assert shapes[name] == (stage.num_frames, size, size, 3), name
    assert shapes == {"D^t": (8, 32, 32, 3), "↑F": (7, 32, 32, 3), "SR^t_l": (4, 32, 32, 3)}


def test_an_image_folder_built_through_the_cli_trains_the_image_phase(tmp_path):
    from mav_jax.train.trainer import train_and_evaluate

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(10):
        Image.fromarray(_gradient_video(1, 40 + index, 60, 0)[0]).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"card {index}\n")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "fake.png").write_bytes(b"\x89PNG not really")
    data_dir = tmp_path / "tfds"
    done = _build_cli(
        "image_collection",
        f"--data_dir={data_dir}",
        f"--source={folder}",
        "--name=cards",
        "--frame_size=16",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "image_collection/cards/2.0.0 image_text: 10 examples" in done.stdout
    assert _skip_counts(str(data_dir), "image_collection/cards") == {
        "empty file": 1,
        "unreadable": 1,
    }
    overrides = {"data.dataset": "image_collection/cards", "train.num_steps": 2}
    config = tiny_config(str(data_dir), **overrides, **{"train.num_samples": 0})
    state = train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == config.train.num_steps


def test_manifests_in_every_format_resolve_paths_and_keep_their_columns(tmp_path):
    (tmp_path / "a.tsv").write_text("videoid\tcontentUrl\tname\n1\tclips/x.mp4\ta cat\n")
    (tmp_path / "b.jsonl").write_text('{"video": "/abs/y.mp4", "text": "a dog", "dur": 3}\n')
    assert read_manifest(str(tmp_path / "a.tsv")) == [
        ManifestEntry(str(tmp_path / "clips/x.mp4"), "a cat", "1", "clips/x.mp4")
    ]
    assert read_manifest(str(tmp_path / "b.jsonl")) == [
        ManifestEntry("/abs/y.mp4", "a dog", metadata='{"dur": 3}')
    ]
