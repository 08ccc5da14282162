"""Weight cache and content hashing.

The first load of a quantized GGUF dequantizes it (tens of seconds for a 0.5B model);
the result is written as safetensors + tokenizer files into a directory keyed by the
sha256 of the source, so later loads are a plain safetensors read. Hashes of large
files are remembered per (path, size, mtime) so a warm load does not re-read the GGUF.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from layerguard.progress import progress_bar

CACHE_ENV = "LAYERGUARD_CACHE_DIR"
_CHUNK = 8 * 1024 * 1024
MARKER = "layerguard-cache.json"


def cache_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: the argument, else $LAYERGUARD_CACHE_DIR, else ~/.cache/layerguard."""
    if override is not None:
        root = Path(override)
    elif os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "layerguard"
    return root.expanduser()


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _index_path(root: Path) -> Path:
    return root / "hash-index.json"


def _read_index(root: Path) -> dict[str, str]:
    try:
        data = json.loads(_index_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_index(root: Path, index: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = _index_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
    os.replace(tmp, _index_path(root))


def iter_file_chunks(paths: Iterable[Path], desc: str, total: int, progress: bool | None) -> Iterator[bytes]:
    """Yield the bytes of several files in order, with one progress bar over all."""
    with progress_bar(total=total, desc=desc, unit="B", unit_scale=True, enabled=progress) as bar:
        for path in paths:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    bar.update(len(chunk))
                    yield chunk


def sha256_file(path: Path, root: Path | None = None, progress: bool = False) -> str:
    """sha256 of a file, remembered in the cache's index keyed by path, size and mtime."""
    root = cache_root() if root is None else root
    index = _read_index(root)
    key = _file_key(path)
    if key in index:
        return index[key]
    h = hashlib.sha256()
    for chunk in iter_file_chunks([path], f"hashing {path.name}", path.stat().st_size, progress):
        h.update(chunk)
    digest = h.hexdigest()
    index[key] = digest
    try:
        _write_index(root, index)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def model_cache_dir(sha256: str, root: Path | None = None) -> Path:
    """Directory of one cached model, keyed by the source's sha256."""
    return (cache_root() if root is None else root) / "models" / sha256[:24]


def is_cached(sha256: str, root: Path | None = None) -> bool:
    """Whether a complete cache entry exists (its marker is written last)."""
    return (model_cache_dir(sha256, root) / MARKER).is_file()


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary directory beside ``final`` that replaces it atomically on success.

    A crash or an exception leaves no half-written cache entry behind.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_marker(directory: Path, meta: dict[str, object]) -> None:
    """Mark a cache entry complete, with its provenance."""
    (directory / MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True))
