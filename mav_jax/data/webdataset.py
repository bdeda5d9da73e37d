"""WebDataset tar shards, as video2dataset and img2dataset write them.

A shard is a tar whose members are grouped into samples by key: `KEY.mp4` (or `.jpg`, ...),
`KEY.txt` (the caption) and `KEY.json` (metadata: url, size, ...) sit next to each other. Shard
lists are brace patterns (`shards/{00000..00099}.tar`, `{a,b}.tar`) or globs, local or gs://.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import tarfile
from collections.abc import Iterator

from mav_jax.data.files import glob_files, open_file

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_CHOICE = re.compile(r"\{([^{}]*,[^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """`a/{000..002}.tar` -> [a/000.tar, a/001.tar, a/002.tar] (zero padding kept); `{x,y}` too.
    Several groups expand as the shell does: the leftmost varies slowest."""
    found = [m for m in (_RANGE.search(pattern), _CHOICE.search(pattern)) if m]
    if not found:
        return [pattern]
    match = min(found, key=lambda m: m.start())
    head, tail = pattern[: match.start()], pattern[match.end() :]
    if match.re is _RANGE:
        first, last = match.group(1), match.group(2)
        if int(last) < int(first):
            raise ValueError(f"Shard range {match.group(0)} in {pattern} runs backwards.")
        width = len(first) if first.startswith("0") else 0
        options = [f"{n:0{width}d}" for n in range(int(first), int(last) + 1)]
    else:
        options = match.group(1).split(",")
    return [path for option in options for path in expand_braces(head + option + tail)]


def is_shard_pattern(source: str) -> bool:
    return any(path.endswith(".tar") for path in expand_braces(source))


def list_shards(pattern: str) -> list[str]:
    """The shard paths a pattern names (globs expanded; listed shards are not checked here: a
    missing one is skipped as an unreadable shard when the build reaches it)."""
    paths = []
    for path in expand_braces(pattern):
        paths.extend(glob_files(path) if any(c in path for c in "*?[") else [path])
    if not paths:
        raise FileNotFoundError(f"No tar shards match {pattern}.")
    return paths


@dataclasses.dataclass
class TarSample:
    key: str  # the member name up to its first dot in the basename, e.g. 'dir/000010005'
    files: dict[str, bytes]  # extension (lowercase, no dot, e.g. 'mp4', 'txt', 'json') -> bytes


def _split_name(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem, _, extension = base.partition(".")
    return os.path.join(folder, stem), extension.lower()


def read_samples(path: str) -> Iterator[TarSample]:
    """The samples of one shard, in order, streaming (the shard is never held whole). A damaged or
    missing shard raises `tarfile.TarError` / `OSError` after the samples read before it."""
    with open_file(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        members = (m for m in tar if m.isfile())
        named = ((_split_name(m.name), m) for m in members)
        for key, group in itertools.groupby(named, key=lambda item: item[0][0]):
            files = {}
            for (_, extension), member in group:
                handle = tar.extractfile(member)
                files[extension] = handle.read() if handle else b""
            yield TarSample(key, files)
