"""Grain data loaders over TFDS (or any random-access) sources, and global batches on the mesh.

Each process reads a disjoint shard (`ShardByJaxProcess`), transforms draw from per-record seeded
generators, and the iterator state can be saved and restored: a restored iterator yields exactly
the batches the original would have yielded next.
"""

from __future__ import annotations

from collections.abc import Sequence

import grain.python as grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# Grain's own defaults for reading records (threads, records read ahead): right for remote storage.
READ_THREADS = 16
PREFETCH_BUFFER_SIZE = 500


class EncodedFrames(tfds.decode.SkipDecoding):
    """Leaves a Video feature's frames encoded (one PNG or JPEG per frame), so that `SampleClip`
    decodes only the frames a clip keeps: 5 of a Moving Digits video's 80 for the quickstart's D^t.
    TFDS's own SkipDecoding lacks the NumPy path of a sequence feature, which `data_source` takes."""

    def decode_batch_example_np(self, serialized_example):
        return serialized_example


def video_source(dataset: str, split: str, data_dir: str | None = None):
    """A random-access TFDS source of `dataset`'s `split` whose records' 'video' is a list of
    encoded frames, for `SampleClip` (every stage's first transform) to decode what it keeps."""
    return tfds.data_source(
        dataset, split=split, data_dir=data_dir or None, decoders={"video": EncodedFrames()}
    )


def make_loader(
    source,
    operations: Sequence,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    num_epochs: int | None = None,
    shard_options: grain.ShardOptions | None = None,
    worker_count: int = 0,
    read_threads: int = READ_THREADS,
    prefetch_buffer_size: int = PREFETCH_BUFFER_SIZE,
) -> grain.DataLoader:
    """A loader of per-process batches of `batch_size` examples. `read_threads` and
    `prefetch_buffer_size` are Grain's record-reading threads and read-ahead (its defaults, for
    remote storage); on a small CPU host 1 and one batch read faster (the quickstart's)."""
    shard_options = shard_options or grain.ShardByJaxProcess(drop_remainder=True)
    sampler = grain.IndexSampler(
        num_records=len(source),
        shard_options=shard_options,
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=seed,
    )
    return grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=[*operations, grain.Batch(batch_size, drop_remainder=True)],
        worker_count=worker_count,
        read_options=grain.ReadOptions(
            num_threads=read_threads, prefetch_buffer_size=prefetch_buffer_size
        ),
    )


def transform_record(operations: Sequence, record: dict, rng: np.random.Generator) -> dict:
    """One record through a stage's transforms outside a loader (planning, inspection, tests)."""
    for op in operations:
        record = op.random_map(record, rng) if hasattr(op, "random_map") else op.map(record)
    return record


def global_batch(local: dict, mesh: Mesh, batch_axes=("data", "fsdp")) -> dict:
    """This process's numeric arrays -> global jax.Arrays sharded on the batch over `batch_axes`."""
    sharding = NamedSharding(mesh, PartitionSpec(batch_axes))
    return {
        key: jax.make_array_from_process_local_data(sharding, value)
        for key, value in local.items()
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub"
    }
