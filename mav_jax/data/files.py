"""File access for local and remote (gs://, ...) paths in one place.

Remote paths go through `tf.io.gfile`; local ones use the standard library, so reading local files
never imports TensorFlow.
"""

from __future__ import annotations

import os


def _is_remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def io_errors() -> tuple[type[BaseException], ...]:
    """What reading a local or remote file raises when it is missing or unreadable: OSError, and
    TensorFlow's errors once tf.io.gfile has been used (remote paths)."""
    import sys

    tf = sys.modules.get("tensorflow")
    return (OSError, tf.errors.OpError) if tf is not None else (OSError,)


def absolute(path: str) -> str:
    """An absolute path (what Orbax wants); remote URLs such as gs://bucket/x are already absolute."""
    return path if _is_remote(path) else os.path.abspath(path)


def open_file(path: str, mode: str = "rb"):
    if _is_remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, encoding=None if "b" in mode else "utf-8")


def exists(path: str) -> bool:
    return _gfile().exists(path) if _is_remote(path) else os.path.exists(path)


def file_size(path: str) -> int:
    return _gfile().stat(path).length if _is_remote(path) else os.path.getsize(path)


def list_files(folder: str, extensions: tuple[str, ...], what: str = "Folder") -> list[str]:
    """Files directly in `folder` whose names end with one of `extensions`, sorted by name."""
    isdir, listdir = (
        (_gfile().isdir, _gfile().listdir) if _is_remote(folder) else (os.path.isdir, os.listdir)
    )
    if not isdir(folder):
        raise FileNotFoundError(f"{what} not found: {folder}")
    names = sorted(n for n in listdir(folder) if n.lower().endswith(extensions))
    return [os.path.join(folder, n) for n in names]


def glob_files(pattern: str) -> list[str]:
    """Paths matching a glob pattern (local or gs://), sorted."""
    if _is_remote(pattern):
        return sorted(_gfile().glob(pattern))
    import glob

    return sorted(glob.glob(pattern))


def make_dirs(path: str) -> None:
    """Create `path` and its parents (local or gs://); fine if it exists."""
    if _is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def rename(source: str, target: str) -> None:
    """Move `source` over `target` (atomic on a local file system; a replaced file is never seen
    half-written)."""
    if _is_remote(source):
        _gfile().rename(source, target, overwrite=True)
    else:
        os.replace(source, target)
