"""Video (or image) lists for user collections: a WebVid-style manifest.

Manifests are CSV, TSV or JSONL with a path column (`path`, `video`, `image`, `contentUrl` or
`file`), an optional caption column (`caption`, `name` (WebVid), `text`), an optional key column
(`key`, `videoid` (WebVid), `id`) and an optional `url`. Other columns are kept as the record's
metadata. Relative paths are resolved against the manifest's folder. Local and gs:// paths both
work (tf.io.gfile).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

from mav_jax.data.files import open_file

PATH_COLUMNS = ("path", "video", "image", "contentUrl", "file")
CAPTION_COLUMNS = ("caption", "name", "text")
KEY_COLUMNS = ("key", "videoid", "id")
URL_COLUMNS = ("url", "contentUrl")
MANIFEST_EXTENSIONS = (".csv", ".tsv", ".jsonl")


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    path: str
    caption: str = ""
    key: str = ""
    url: str = ""
    metadata: str = ""  # the row's other columns, as JSON


def _pick(row: dict, columns: tuple[str, ...]) -> tuple[str | None, str | None]:
    for column in columns:
        if row.get(column) not in (None, ""):
            return column, str(row[column])
    return None, None


def read_manifest(path: str) -> list[ManifestEntry]:
    """The entries of a .csv / .tsv / .jsonl manifest, in order."""
    with open_file(path, "r") as f:
        text = f.read()
    if path.endswith(".jsonl"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif path.endswith((".csv", ".tsv")):
        rows = list(
            csv.DictReader(io.StringIO(text), delimiter="\t" if path.endswith(".tsv") else ",")
        )
    else:
        raise ValueError(f"Manifest {path} must be .csv, .tsv or .jsonl.")
    base = os.path.dirname(path)
    entries = []
    for number, row in enumerate(rows, start=1):
        path_column, media = _pick(row, PATH_COLUMNS)
        if media is None:
            raise ValueError(f"{path} row {number} has no path column; use one of {PATH_COLUMNS}.")
        if "://" not in media and not os.path.isabs(media):
            media = os.path.join(base, media)
        caption_column, caption = _pick(row, CAPTION_COLUMNS)
        key_column, key = _pick(row, KEY_COLUMNS)
        _, url = _pick(row, URL_COLUMNS)
        used = {path_column, caption_column, key_column, "url"}
        extra = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
        entries.append(
            ManifestEntry(
                path=media,
                caption=caption or "",
                key=key or "",
                url=url or "",
                metadata=json.dumps(extra, sort_keys=True) if extra else "",
            )
        )
    return entries
