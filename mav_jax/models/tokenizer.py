"""CLIP's byte-level BPE tokenizer, run by Hugging Face `tokenizers` (Rust), never a Python merge loop.

Three ways to get one, all from local files:

* `ClipTokenizer.from_openai_bpe(path)`: OpenAI's `bpe_simple_vocab_16e6.txt.gz` (the file OpenAI
  CLIP and OpenCLIP ship): 49,408 tokens, start-of-text 49406, end-of-text 49407.
* `ClipTokenizer.from_file(path)`: a `tokenizer.json` written by `save`.
* `ClipTokenizer.digits()`: a small BPE trained on the complete caption language of the embedded
  Moving Digits set, the tiny cascade's default (deterministic, under a second).

Text is cleaned as CLIP does (NFC, whitespace collapsed, lower case; OpenAI also runs ftfy, which
only matters for mojibake), split with CLIP's regex, byte-mapped, and merged with `</w>` marking
the end of each word. `encode` wraps each text in start/end tokens and pads with 0 to the context.
"""

from __future__ import annotations

import functools
import gzip
import json

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from mav_jax.data import files

START, END = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
# CLIP's pre-tokenisation: contractions, runs of letters, single digits, runs of other symbols.
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
OPENAI_MERGES = 49152 - 256 - 2  # merges OpenAI's vocabulary uses from the file


class PromptTooLongError(ValueError):
    """A text needs more tokens than the text encoder's context holds."""


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (the base of the vocabulary)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=False)}


def _configure(tokenizer: Tokenizer) -> Tokenizer:
    """CLIP's cleaning, pre-tokenisation and decoding around a BPE model."""
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


class ClipTokenizer:
    """Text -> (N, context_length) int32 token ids for the CLIP text encoder and the prior."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.start_id = tokenizer.token_to_id(START)
        self.end_id = tokenizer.token_to_id(END)
        if self.start_id is None or self.end_id is None:
            raise ValueError(f"The vocabulary lacks the special tokens {START} and {END}.")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @classmethod
    def from_openai_bpe(cls, path: str) -> ClipTokenizer:
        """OpenAI's merges file (`bpe_simple_vocab_16e6.txt.gz`, gzipped or not)."""
        if not files.exists(path):
            raise FileNotFoundError(
                f"BPE vocabulary not found: {path}. Pass the bpe_simple_vocab_16e6.txt.gz that "
                "OpenAI CLIP and OpenCLIP ship (e.g. inside the open_clip package)."
            )
        with files.open_file(path, "rb") as f:
            raw = f.read()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        lines = text.split("\n")[1 : OPENAI_MERGES + 1]  # line 0 is a version header
        return cls.from_merges([tuple(line.split()) for line in lines if line.strip()])

    @classmethod
    def from_merges(cls, merges: list[tuple[str, str]]) -> ClipTokenizer:
        """OpenAI's vocabulary layout: the 256 byte characters, the same ending a word, one token
        per merge, then start and end (so every byte can be encoded, at any word position)."""
        base = list(bytes_to_unicode().values())
        vocab = base + [b + END_OF_WORD for b in base] + ["".join(m) for m in merges] + [START, END]
        bpe = models.BPE(
            vocab={token: i for i, token in enumerate(vocab)},
            merges=merges,
            end_of_word_suffix=END_OF_WORD,
            fuse_unk=False,
        )
        tokenizer = _configure(Tokenizer(bpe))
        tokenizer.add_special_tokens([START, END])
        return cls(tokenizer)

    @classmethod
    def train(cls, texts: list[str], num_merges: int) -> ClipTokenizer:
        """Up to `num_merges` BPE merges learnt from `texts` with CLIP's cleaning and splitting,
        laid out as OpenAI's vocabulary (512 byte tokens + merges + start/end)."""
        learner = _configure(Tokenizer(models.BPE(end_of_word_suffix=END_OF_WORD)))
        trainer = trainers.BpeTrainer(
            vocab_size=2 * 256 + num_merges,
            end_of_word_suffix=END_OF_WORD,
            initial_alphabet=list(bytes_to_unicode().values()),
            show_progress=False,
        )
        learner.train_from_iterator(texts, trainer=trainer)
        merges = json.loads(learner.to_str())["model"]["merges"]
        return cls.from_merges(
            [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        )

    @classmethod
    @functools.lru_cache(maxsize=1)
    def digits(cls) -> ClipTokenizer:
        """The tiny cascade's vocabulary: BPE over every caption Moving Digits can write."""
        from mav_jax.data.digits_render import caption_language

        return cls.train(caption_language(), num_merges=256)

    @classmethod
    def from_file(cls, path: str) -> ClipTokenizer:
        with files.open_file(path, "r") as f:
            return cls(Tokenizer.from_str(f.read()))

    @classmethod
    def from_spec(cls, spec: str) -> ClipTokenizer:
        """'digits', a tokenizer.json, or OpenAI's bpe_simple_vocab_16e6.txt(.gz)."""
        if spec == "digits":
            return cls.digits()
        if spec.endswith(".json"):
            return cls.from_file(spec)
        if spec.endswith((".txt", ".txt.gz", ".gz")):
            return cls.from_openai_bpe(spec)
        raise ValueError(
            f"Unknown tokenizer '{spec}': use 'digits', a tokenizer.json, or OpenAI's "
            "bpe_simple_vocab_16e6.txt.gz."
        )

    def save(self, path: str) -> None:
        with files.open_file(path, "w") as f:
            f.write(self.tokenizer.to_str())

    def ids(self, text: str) -> list[int]:
        """Token ids of `text` without the start/end tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode(
        self, texts: list[str] | str, context_length: int, *, truncate: bool = False
    ) -> np.ndarray:
        """(N, context_length) int32: start, the text's tokens, end, then zeros.

        A text that does not fit raises PromptTooLongError, or with `truncate` (training data)
        keeps its first tokens and still ends with the end token, as CLIP does.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(texts), context_length), np.int32)
        room = context_length - 2
        for row, encoding in enumerate(
            self.tokenizer.encode_batch(texts, add_special_tokens=False)
        ):
            ids = encoding.ids
            if len(ids) > room:
                if not truncate:
                    raise PromptTooLongError(
                        f"The prompt {texts[row][:60]!r}... is {len(ids)} tokens; the text "
                        f"encoder's context holds {room} (context_length={context_length} "
                        "minus start and end). Shorten the prompt."
                    )
                ids = ids[:room]
            tokens = [self.start_id, *ids, self.end_id]
            out[row, : len(tokens)] = tokens
        return out

    def decode(self, ids) -> str:
        """Token ids (what lies between start and end) -> text, words separated by single spaces."""
        ids = [int(i) for i in ids]
        if self.start_id in ids:
            ids = ids[ids.index(self.start_id) + 1 :]
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        text = "".join(self.tokenizer.id_to_token(i) for i in ids)
        as_bytes = {c: b for b, c in bytes_to_unicode().items()}
        words = text.split(END_OF_WORD)
        return " ".join(
            bytearray(as_bytes[c] for c in w).decode("utf-8", errors="replace") for w in words
        ).strip()
