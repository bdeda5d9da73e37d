"""Video (or image) lists for user collections: a WebVid-style manifest or a folder.

Manifests are CSV, TSV or JSONL with a path column (`path`, `video`, `image`, `contentUrl` or
`file`) and an optional caption column (`caption`, `name` (WebVid), `text`). Relative paths are
resolved against the manifest's folder. Local and gs:// paths both work (tf.io.gfile).
"""

from __future__ import annotations

import csv
import io
import json
import os

from mav_jax.data.files import open_file

PATH_COLUMNS = ("path", "video", "image", "contentUrl", "file")
CAPTION_COLUMNS = ("caption", "name", "text")


def _pick(row: dict, columns: tuple[str, ...]) -> str | None:
    for column in columns:
        if row.get(column) not in (None, ""):
            return str(row[column])
    return None


def read_manifest(path: str) -> list[tuple[str, str]]:
    """[(media path, caption)] from a .csv / .tsv / .jsonl manifest."""
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
        media = _pick(row, PATH_COLUMNS)
        if media is None:
            raise ValueError(f"{path} row {number} has no path column; use one of {PATH_COLUMNS}.")
        if "://" not in media and not os.path.isabs(media):
            media = os.path.join(base, media)
        entries.append((media, _pick(row, CAPTION_COLUMNS) or ""))
    return entries
