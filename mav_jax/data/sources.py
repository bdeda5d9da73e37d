"""What a collection build reads: a folder, a manifest, or WebDataset tar shards, as units of work
(a file, or a whole shard) and the items (one video or image each) they hold.

Units are what the build distributes first; a shard unit streams its samples out, so a worker
never holds a shard whole. Every item carries a record prefix unique in the build, so records keep
the same keys whichever runner, worker count or order built them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tarfile
from collections.abc import Iterator

from mav_jax.data import video_io
from mav_jax.data.files import exists, file_size, io_errors, list_files, open_file
from mav_jax.data.manifest import MANIFEST_EXTENSIONS, read_manifest
from mav_jax.data.media import check_size
from mav_jax.data.skips import Skipped
from mav_jax.data.webdataset import is_shard_pattern, list_shards, read_samples

VIDEO_EXTENSIONS = tuple(e.removeprefix(".") for e in video_io.VIDEO_EXTENSIONS)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp")


@dataclasses.dataclass(frozen=True)
class SourceUnit:
    """One element of the build's first stage: a media file or a tar shard."""

    index: int  # position in the source listing (manifest row, file, shard)
    path: str
    is_shard: bool = False
    caption: str = ""
    key: str = ""
    url: str = ""
    metadata: str = ""  # JSON text


@dataclasses.dataclass(frozen=True)
class SourceItem:
    """One video or image and what is known about it; `data` is None until it is read."""

    record_prefix: str  # unique in the build: the unit's index (and the sample key in a shard)
    key: str  # the source's own key: the tar sample key, the manifest key, or the file name
    path: str
    caption: str
    url: str = ""
    metadata: str = ""
    data: bytes | None = None


@dataclasses.dataclass(frozen=True)
class ItemFilter:
    """Which items a build keeps (what the worker functions need of the builder's config)."""

    extensions: tuple[str, ...]  # media extensions, lowercase, no dot
    max_bytes: int  # 0: no limit
    require_captions: bool  # shard samples without a caption are skipped


def source_kind(source: str) -> str:
    """'shards', 'manifest' or 'folder'."""
    if not source:
        raise ValueError("--source must name a folder, a manifest or tar shards.")
    if is_shard_pattern(source):
        return "shards"
    return "manifest" if source.endswith(MANIFEST_EXTENSIONS) else "folder"


def _sidecar_caption(path: str) -> str:
    sidecar = os.path.splitext(path)[0] + ".txt"
    if not exists(sidecar):
        return ""
    with open_file(sidecar, "r") as f:
        return f.read().strip()


def list_units(source: str, extensions: tuple[str, ...]) -> list[SourceUnit]:
    """The build's units, in a fixed order (the driver lists them; workers process them)."""
    kind = source_kind(source)
    if kind == "shards":
        return [SourceUnit(i, path, is_shard=True) for i, path in enumerate(list_shards(source))]
    if kind == "manifest":
        return [
            SourceUnit(i, e.path, caption=e.caption, key=e.key, url=e.url, metadata=e.metadata)
            for i, e in enumerate(read_manifest(source))
        ]
    suffixes = tuple("." + e for e in extensions)
    return [
        SourceUnit(i, path, caption=_sidecar_caption(path), key=os.path.basename(path))
        for i, path in enumerate(list_files(source, suffixes, what="Source folder"))
    ]


def _shard_items(unit: SourceUnit, wanted: ItemFilter) -> Iterator[SourceItem | Skipped]:
    samples = read_samples(unit.path)
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            return
        except (tarfile.TarError, EOFError, *io_errors()) as error:
            yield Skipped("unreadable shard", unit.path, str(error) or type(error).__name__)
            return
        where = f"{unit.path}:{sample.key}"
        media = [e for e in wanted.extensions if e in sample.files]
        if not media:
            yield Skipped("no media", where, f"members: {sorted(sample.files)}")
            continue
        info = {}
        if "json" in sample.files:
            try:
                info = json.loads(sample.files["json"])
            except ValueError:
                info = {}
        caption = (
            sample.files["txt"].decode("utf-8", "replace").strip() if "txt" in sample.files else ""
        )
        caption = caption or str(info.get("caption") or "")
        if not caption and wanted.require_captions:
            yield Skipped("no caption", where)
            continue
        yield SourceItem(
            record_prefix=f"{unit.index:06d}/{sample.key}",
            key=sample.key,
            path=where,
            caption=caption,
            url=str(info.get("url") or ""),
            metadata=sample.files.get("json", b"").decode("utf-8", "replace"),
            data=sample.files[media[0]],
        )


def unit_items(unit: SourceUnit, wanted: ItemFilter) -> Iterator[SourceItem | Skipped]:
    """The items of a unit (a shard's samples, or the file itself), or why one is skipped."""
    if unit.is_shard:
        yield from _shard_items(unit, wanted)
        return
    yield SourceItem(
        record_prefix=f"{unit.index:09d}",
        key=unit.key or os.path.basename(unit.path),
        path=unit.path,
        caption=unit.caption,
        url=unit.url,
        metadata=unit.metadata,
    )


def item_bytes(item: SourceItem, max_bytes: int) -> bytes:
    """The item's encoded media (read from its path if not in a shard), or `Skipped`."""
    if item.data is not None:
        check_size(len(item.data), item.path, max_bytes)
        return item.data
    try:
        check_size(file_size(item.path), item.path, max_bytes)
        with open_file(item.path) as f:
            return f.read()
    except io_errors() as error:
        raise Skipped("unreadable", item.path, str(error)) from error
