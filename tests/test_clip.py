"""CLIP: the tokenizer, the two towers against OpenCLIP's reference on shared weights, the
contrastive loss, and the clip stage training and exporting through the shared trainer."""

import gzip
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mav_jax.models.clip import CLIP, ClipConfig, contrastive_loss
from mav_jax.models.clip_convert import config_from_state_dict, load_into
from mav_jax.models.frozen_clip import FrozenClip
from mav_jax.models.tokenizer import ClipTokenizer, PromptTooLongError, bytes_to_unicode
from mav_jax.parallel import make_mesh

HAS_OPEN_CLIP = importlib.util.find_spec("open_clip") is not None
NO_OPEN_CLIP = (
    "open_clip_torch (the reference implementation) is not installed: it needs PyTorch, which the "
    "test extra leaves out; pip install open_clip_torch to run this comparison"
)


def test_digits_tokenizer_round_trips_every_caption_word():
    tok = ClipTokenizer.digits()
    texts = ["A Red 7 moving  up and left", "the number three in cyan drifting down!"]
    ids = tok.encode(texts, 16)
    assert ids.shape == (2, 16) and ids.dtype == np.int32
    assert (ids[:, 0] == tok.start_id).all()
    # The end token is the highest id (where CLIP pools), right after the text, then zeros.
    assert tok.end_id == tok.vocab_size - 1
    for row, _text in zip(ids, texts, strict=False):
        end = int(np.argmax(row))
        assert row[end] == tok.end_id and (row[end + 1 :] == 0).all()
    assert tok.decode(ids[0]) == "a red 7 moving up and left"
    assert tok.decode(ids[1]) == "the number three in cyan drifting down !"
    # Words outside the caption language still encode (byte fallback), and decode back.
    assert tok.decode(tok.encode("a purple über", 24)[0]) == "a purple über"


def test_too_long_prompt_is_an_error_and_training_text_truncates():
    tok = ClipTokenizer.digits()
    long = " ".join(["red"] * 30)
    with pytest.raises(PromptTooLongError, match="context holds 14"):
        tok.encode(long, 16)
    truncated = tok.encode(long, 16, truncate=True)[0]
    assert truncated[-1] == tok.end_id and truncated[0] == tok.start_id
    assert list(tok.encode("", 4)[0]) == [tok.start_id, tok.end_id, 0, 0]


def test_the_tokenize_transform_matches_the_tokenizer_for_repeated_captions():
    """Tokenize caches by caption: a repeat gives the same (read-only) tokens, and bytes or str
    captions give what the tokenizer does."""
    from mav_jax.stages.captions import Tokenize

    tok, op = ClipTokenizer.digits(), Tokenize("digits", 16)
    captions = [
        b"a red 3 moving right",
        "a blue 7",
        b"a red 3 moving right",
        " ".join(["red"] * 30),
    ]
    outs = [op.map({"caption": c})["tokens"] for c in captions]
    for caption, tokens in zip(captions, outs, strict=False):
        text = caption.decode() if isinstance(caption, bytes) else caption
        np.testing.assert_array_equal(tokens, tok.encode(text, 16, truncate=True)[0])
    assert outs[0] is outs[2] and not outs[0].flags.writeable


def test_openai_vocabulary_layout_from_a_merges_file(tmp_path):
    """OpenAI's file format: a header line, then merges; ids are bytes, bytes+</w>, merges,
    start, end."""
    merges = ["r e", "re d</w>", "b l", "bl u", "blu e</w>"]
    path = tmp_path / "bpe.txt.gz"
    path.write_bytes(gzip.compress(("#version: 0.2\n" + "\n".join(merges) + "\n").encode()))
    tok = ClipTokenizer.from_openai_bpe(str(path))
    assert tok.vocab_size == 512 + len(merges) + 2
    assert (tok.start_id, tok.end_id) == (512 + len(merges), 513 + len(merges))
    red, blue = 512 + 1, 512 + 4  # the merges that complete "red</w>" and "blue</w>"
    assert tok.ids("Red blue") == [red, blue]
    assert tok.ids("x")[0] == 256 + list(bytes_to_unicode().values()).index("x")


@pytest.mark.skipif(not HAS_OPEN_CLIP, reason=NO_OPEN_CLIP)
def test_openai_tokenizer_matches_open_clip():
    import open_clip

    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    ours = ClipTokenizer.from_openai_bpe(bpe)
    texts = [
        "A red 7 moving up and left",
        "It's   a DOG's life!! 12345 café",
        "naïve résumé — 日本語 😀",
        "",
    ]
    np.testing.assert_array_equal(ours.encode(texts, 77), open_clip.tokenize(texts).numpy())


@pytest.mark.skipif(not HAS_OPEN_CLIP, reason=NO_OPEN_CLIP)
def test_towers_match_open_clip_on_shared_random_weights():
    import torch
    from open_clip.model import CLIP as ReferenceCLIP
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    reference = ReferenceCLIP(
        embed_dim=64,
        quick_gelu=True,
        vision_cfg=CLIPVisionCfg(layers=2, width=128, patch_size=8, image_size=32, head_width=64),
        text_cfg=CLIPTextCfg(context_length=16, vocab_size=300, width=128, heads=2, layers=2),
    ).eval()
    with torch.no_grad():  # perturb every tensor, zero-initialised ones included
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    config = config_from_state_dict(state)
    model = load_into(CLIP(config, rngs=nnx.Rngs(0)), state)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)  # NCHW, CLIP-normalised
    tokens = rng.integers(1, 299, (3, 16))
    tokens[:, 9], tokens[:, 10:] = 299, 0  # end token (the highest id), then padding
    with torch.no_grad():
        want_image = reference.encode_image(torch.from_numpy(images)).numpy()
        want_text = reference.encode_text(torch.from_numpy(tokens)).numpy()
    got_image = model.image(jnp.asarray(images.transpose(0, 2, 3, 1)))
    got_text = model.encode_text(jnp.asarray(tokens))
    np.testing.assert_allclose(got_image, want_image, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(got_text, want_text, atol=2e-5, rtol=1e-5)


def test_text_tower_ignores_everything_after_the_end_token():
    config = ClipConfig(
        embed_dim=16,
        image_size=16,
        patch_size=8,
        vision_width=32,
        vision_layers=1,
        vision_heads=2,
        context_length=8,
        vocab_size=50,
        text_width=32,
        text_layers=2,
        text_heads=2,
    )
    model = CLIP(config, rngs=nnx.Rngs(0))
    tokens = jnp.array([[48, 5, 6, 49, 0, 0, 0, 0]])
    other = tokens.at[0, 5:].set(jnp.array([7, 8, 9]))
    np.testing.assert_allclose(model.encode_text(tokens), model.encode_text(other), atol=1e-6)
    assert not np.allclose(model.encode_text(tokens), model.encode_text(tokens.at[0, 1].set(7)))


def test_contrastive_loss_against_a_direct_computation():
    rng = np.random.default_rng(1)
    images, texts = rng.standard_normal((2, 6, 8)).astype(np.float32)
    loss, aux = contrastive_loss(jnp.asarray(images), jnp.asarray(texts), jnp.log(10.0))
    a = images / np.linalg.norm(images, axis=1, keepdims=True)
    b = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    logits = 10.0 * a @ b.T

    def cross_entropy(x):
        return np.mean(np.log(np.exp(x).sum(1)) - np.diag(x))

    np.testing.assert_allclose(
        loss, 0.5 * (cross_entropy(logits) + cross_entropy(logits.T)), rtol=1e-5
    )
    assert aux["accuracy"] == np.mean(logits.argmax(1) == np.arange(6))
    perfect, aux = contrastive_loss(jnp.asarray(images), jnp.asarray(images), jnp.log(100.0))
    assert aux["accuracy"] == 1.0 and perfect < 0.1


def test_clip_stage_trains_exports_and_loads_frozen(clip_export):
    with open(os.path.join(clip_export, "config.json")) as f:
        record = json.load(f)
    assert record["stage"] == "clip" and record["exported_from"]["step"] == 4
    clip = FrozenClip(clip_export, make_mesh({"data": 2, "tensor": 4}))
    tokens = clip.tokenize(["a red 3 in the center", "a blue 5 moving left"])
    embedding, features = clip.encode_text(jnp.asarray(tokens))
    assert embedding.shape == (2, 32) and features.shape == (2, 24, 32)
    images = clip.encode_image(jnp.zeros((2, 16, 16, 3)))
    assert images.shape == (2, 32) and bool(jnp.isfinite(images).all())
    with pytest.raises(PromptTooLongError):
        clip.tokenize([" ".join(["red"] * 40)])


def test_frozen_clip_refuses_other_exports_and_missing_paths(tmp_path):
    mesh = make_mesh({"data": 8})
    with pytest.raises(ValueError, match="config.clip_from"):
        FrozenClip("", mesh)
    with pytest.raises(FileNotFoundError, match="not an exported checkpoint"):
        FrozenClip(str(tmp_path), mesh)


def test_clip_jits_under_a_sharded_mesh():
    """Parameters born sharded by the logical-axis rules, forward equal to the unsharded one."""
    from mav_jax.parallel import shard_module_state

    config = ClipConfig(
        embed_dim=16,
        image_size=16,
        patch_size=8,
        vision_width=32,
        vision_layers=1,
        vision_heads=2,
        context_length=8,
        vocab_size=50,
        text_width=32,
        text_layers=1,
        text_heads=2,
    )
    model = CLIP(config, rngs=nnx.Rngs(0))
    pixels = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3), minval=-1, maxval=1)
    want = model.encode_image(pixels)
    sharded = shard_module_state(model, make_mesh({"fsdp": 4, "tensor": 2}))
    np.testing.assert_allclose(
        nnx.jit(lambda m, x: m.encode_image(x))(sharded, pixels), want, atol=1e-5
    )


@pytest.mark.skipif(not HAS_OPEN_CLIP, reason=NO_OPEN_CLIP)
def test_converted_openclip_checkpoint_is_a_clip_export(tmp_path):
    """open_clip's model saved as .npz (no torch needed to read it) -> an export FrozenClip loads,
    with OpenAI's tokenizer saved beside it."""
    import open_clip
    import torch
    from open_clip.model import CLIP as ReferenceCLIP
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from mav_jax.models.clip_convert import convert_to_export

    torch.manual_seed(0)
    reference = ReferenceCLIP(
        embed_dim=64,
        quick_gelu=True,
        vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=8, image_size=16, head_width=64),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
    ).eval()
    checkpoint = tmp_path / "model.npz"
    np.savez(checkpoint, **{k: v.numpy() for k, v in reference.state_dict().items()})
    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    convert_to_export(str(checkpoint), bpe, str(tmp_path / "export"))
    clip = FrozenClip(str(tmp_path / "export"), make_mesh({"data": 8}))
    tokens = clip.tokenize(["a photo of a cat"])
    np.testing.assert_array_equal(tokens, open_clip.tokenize(["a photo of a cat"]).numpy())
    with torch.no_grad():
        want = reference.encode_text(torch.from_numpy(tokens).long()).numpy()
    np.testing.assert_allclose(clip.encode_text(jnp.asarray(tokens))[0], want, atol=2e-5)
