"""Why a collection build skipped an input, and the build's report of those skips.

Bad inputs never stop a build: each is turned into a `Skipped` (a reason from `SKIP_REASONS` and
the path), counted, and a few paths per reason are kept as a sample. The report goes to the console
and into the dataset's metadata (`builder.info.metadata["skipped"]`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

# reason -> what it means (and what a user can do about it)
SKIP_REASONS = {
    "empty file": "zero bytes",
    "oversized": "larger than --max_bytes (or an image over PIL's pixel limit)",
    "unreadable": "missing, corrupt, truncated before any frame, or not a video or image",
    "no video stream": "a container with no video in it (audio only, subtitles)",
    "unsupported codec": "a video stream FFmpeg has no decoder for",
    "too short": "fewer frames than one clip (--clip_frames)",
    "no caption": "a tar sample without a .txt caption (keep them with --allow_uncaptioned)",
    "no media": "a tar sample with a caption or metadata but no video or image file",
    "unreadable shard": "a tar shard that is missing or not a tar file (samples read before the "
    "damage are kept)",
    "truncated": "decoding stopped part-way; the clips before the damage are kept",
}
SAMPLE_PATHS = 10  # paths kept per reason in the report


class Skipped(Exception):
    """An input the build cannot use, and why (one of SKIP_REASONS)."""

    def __init__(self, reason: str, path: str, detail: str = ""):
        if reason not in SKIP_REASONS:
            raise ValueError(f"Unknown skip reason {reason!r}; add it to SKIP_REASONS.")
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason, self.path, self.detail = reason, path, detail

    def record(self) -> dict:
        return {"reason": self.reason, "path": self.path, "detail": self.detail}


@dataclasses.dataclass
class SkipReport:
    """Counts of skipped inputs by reason, with a sample of their paths."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    samples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> SkipReport:
        report = cls()
        for record in sorted(records, key=lambda r: (r["reason"], r["path"])):  # runner-independent
            reason = record["reason"]
            report.counts[reason] = report.counts.get(reason, 0) + 1
            sample = report.samples.setdefault(reason, [])
            if len(sample) < SAMPLE_PATHS:
                detail = f" ({record['detail']})" if record.get("detail") else ""
                sample.append(record["path"] + detail)
        return report

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> str:
        return json.dumps({"counts": self.counts, "samples": self.samples}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SkipReport:
        data = json.loads(text)
        return cls(counts=data["counts"], samples=data["samples"])

    def text(self, name: str) -> str:
        lines = [f"{name}: skipped {self.total} input(s)"]
        for reason in sorted(self.counts):
            lines.append(f"  {reason}: {self.counts[reason]}  [{SKIP_REASONS[reason]}]")
            lines.extend(f"    {path}" for path in self.samples[reason])
        return "\n".join(lines)
