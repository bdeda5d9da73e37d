"""The Apache Beam build shared by the user collection builders (`video_collection`,
`image_collection`): units -> items -> records, with every skipped input reported.

    units (files or tar shards) --Items--> items --Reshuffle--> --Records--> (key, record)
                          \\____ skipped ____/____________________/--> skipped.jsonl-*

TFDS runs the pipeline: in this process by default, on several (`--beam_runner=DirectRunner
--direct_num_workers=N`), or on Dataflow, Spark or Flink by pipeline options. The reshuffle spreads
one shard's samples over all workers. Skipped inputs are written, one JSON line each, next to the
dataset, and summarised into its metadata (`info.metadata["skipped"]`) and the console.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator

import tensorflow_datasets as tfds

from mav_jax.data.files import glob_files, open_file
from mav_jax.data.skips import Skipped, SkipReport
from mav_jax.data.sources import ItemFilter, SourceItem, SourceUnit, list_units, unit_items

SKIPPED = "skipped"
SKIPPED_FILE = "skipped.jsonl"  # in the dataset folder: every skipped input, one JSON line each

# item, settings -> records (key, example) or `Skipped` notes; raises `Skipped` to drop the item.
MakeRecords = Callable[[SourceItem, object], Iterator[tuple[str, dict] | Skipped]]


@dataclasses.dataclass
class CollectionConfig(tfds.core.BuilderConfig):
    source: str = ""  # a folder, a manifest (.csv/.tsv/.jsonl) or tar shards; local or gs://
    frame_size: int = 64  # stored frames are frame_size x frame_size (shorter side, centre crop)
    jpeg_quality: int = 90  # stored frames are JPEGs of this quality
    max_bytes: int = 2**31  # larger inputs are skipped as oversized (0: no limit)
    require_captions: bool = True  # tar samples without a caption are skipped

    def problems(self) -> list[str]:
        found = []
        if not self.source:
            found.append("--source must name a folder, a manifest or tar shards")
        if self.frame_size < 1:
            found.append(f"--frame_size must be >= 1, got {self.frame_size}")
        if not 1 <= self.jpeg_quality <= 95:
            found.append(f"--jpeg_quality must be in [1, 95], got {self.jpeg_quality}")
        if self.max_bytes < 0:
            found.append(f"--max_bytes must be >= 0, got {self.max_bytes}")
        return found


def _beam():
    try:
        import apache_beam as beam
    except ImportError as error:
        raise ImportError(
            "Collection builds run on Apache Beam: pip install 'mav_jax[data]' (apache-beam)."
        ) from error
    return beam


def _items(unit: SourceUnit, wanted: ItemFilter):
    beam = _beam()
    for item in unit_items(unit, wanted):
        if isinstance(item, Skipped):
            yield beam.pvalue.TaggedOutput(SKIPPED, item.record())
        else:
            yield item


def _records(item: SourceItem, make: MakeRecords, settings):
    beam = _beam()
    try:
        for out in make(item, settings):
            if isinstance(out, Skipped):
                yield beam.pvalue.TaggedOutput(SKIPPED, out.record())
            else:
                yield out
    except Skipped as skipped:
        yield beam.pvalue.TaggedOutput(SKIPPED, skipped.record())


def build_transform(units, wanted: ItemFilter, make: MakeRecords, settings, skipped_prefix: str):
    """The Beam transform TFDS applies to its pipeline: (key, example) records out."""
    beam = _beam()

    def expand(pipeline):
        items = (
            pipeline
            | "Units" >> beam.Create(units)
            | "Items" >> beam.FlatMap(_items, wanted).with_outputs(SKIPPED, main="items")
        )
        records = (
            items.items
            | "Spread" >> beam.Reshuffle()
            | "Records"
            >> beam.FlatMap(_records, make, settings).with_outputs(SKIPPED, main="records")
        )
        _ = (
            (items[SKIPPED], records[SKIPPED])
            | "AllSkipped" >> beam.Flatten()
            | "ToJson" >> beam.Map(json.dumps, sort_keys=True)
            | "WriteSkipped" >> beam.io.WriteToText(skipped_prefix)
        )
        return records.records

    return beam.ptransform_fn(expand)()


class CollectionBuilder(tfds.core.GeneratorBasedBuilder):
    """A TFDS builder over the user's media, built by Beam (see the module docstring)."""

    SPLIT = "train"
    EXTENSIONS: tuple[str, ...] = ()
    make_records: MakeRecords  # a module-level function, so Beam workers can unpickle it

    def _features(self) -> dict:
        raise NotImplementedError

    def _settings(self):
        """What `make_records` needs of the config (picklable)."""
        return self.builder_config

    def _info(self) -> tfds.core.DatasetInfo:
        common = {
            "caption": tfds.features.Text(),
            "key": tfds.features.Text(),  # the source's key (tar sample, manifest key, file name)
            "url": tfds.features.Text(),
            "path": tfds.features.Text(),  # the file, or SHARD:KEY
            "metadata": tfds.features.Text(),  # the sample's .json or the manifest row, as JSON
        }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({**self._features(), **common}),
            metadata=tfds.core.MetadataDict(),
            description=self.__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        found = cfg.problems()
        if found:
            raise ValueError("; ".join(found))
        wanted = ItemFilter(self.EXTENSIONS, cfg.max_bytes, cfg.require_captions)
        units = list_units(cfg.source, self.EXTENSIONS)
        prefix = os.path.join(os.fspath(self.data_path), SKIPPED_FILE)
        make = type(self).make_records
        return {self.SPLIT: build_transform(units, wanted, make, self._settings(), prefix)}

    def _generate_examples(self):  # the transform is made in _split_generators
        raise NotImplementedError

    def _download_and_prepare(self, dl_manager, download_config):
        super()._download_and_prepare(dl_manager, download_config)
        records = []
        for path in glob_files(os.path.join(os.fspath(self.data_path), SKIPPED_FILE + "*")):
            with open_file(path, "r") as f:
                records.extend(json.loads(line) for line in f if line.strip())
        report = SkipReport.from_records(records)
        self.info.metadata["skipped"] = json.loads(report.to_json())
        print(report.text(self.name))

    def skip_report(self) -> SkipReport:
        """The skipped inputs of this build (from the dataset's metadata)."""
        data = self.info.metadata.get("skipped", {"counts": {}, "samples": {}})
        return SkipReport(counts=dict(data["counts"]), samples=dict(data["samples"]))
