"""One way to read a file the user gave us.

Every reader takes the path, ``what`` the file is (``"paraphrase file"``) and ``fix``, the
sentence that tells the user how to repair it, and turns every failure (missing, a folder where a
file is expected, unreadable, not UTF-8, empty, malformed, the wrong JSON type, a schema
mismatch, a corrupt archive or index) into one :class:`~vlmkit.errors.UserError` line naming the
file and the fix. The CLI's error handler prints it and exits with code 2.

Schemas are pydantic types (``dict[str, list[str]]``), validated in strict mode for strings and
lists, so a plain string where a list of strings belongs is rejected instead of being split into
characters.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from vlmkit.errors import UserError


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message (its type's name when it has none), shortened."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def _fail(path: Path, problem: str, fix: str) -> UserError:
    return UserError(f"{path} {problem}; {fix}" if fix else f"{path} {problem}")


def need_file(path: str | Path, what: str, fix: str) -> Path:
    """``path`` as a :class:`Path` when it is an existing file; otherwise a :class:`UserError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{what} not found: {path}; {fix}")
    if not path.is_file():
        raise UserError(f"{what} {path} is a folder, not a file; {fix}")
    return path


def need_dir(path: str | Path, what: str, fix: str) -> Path:
    """``path`` when it is an existing folder; otherwise a :class:`UserError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{what} not found: {path}; {fix}")
    if not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; {fix}")
    return path


def read_text(path: str | Path, what: str, fix: str, *, allow_empty: bool = False) -> str:
    """The UTF-8 text of a file."""
    path = need_file(path, what, fix)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"is not UTF-8 text (byte {exc.start})", fix) from exc
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or type(exc).__name__})", fix) from exc
    if not allow_empty and not text.strip():
        raise _fail(path, "is empty", fix)
    return text


def read_lines(path: str | Path, what: str, fix: str, *, comments: bool = True, minimum: int = 1) -> list[str]:
    """Non-blank lines, stripped (``#`` lines skipped when ``comments``); at least ``minimum``."""
    text = read_text(path, what, fix)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not (comments and line.lstrip().startswith("#"))]
    if len(lines) < minimum:
        raise _fail(Path(path).expanduser(), f"has {len(lines)} usable line(s), at least {minimum} needed", fix)
    return lines


def read_texts(path: str | Path) -> list[str]:
    """A file of texts to embed or debias: one per line, blank lines skipped, ``#`` kept."""
    return read_lines(path, "text file", "pass a UTF-8 file with one text per line", comments=False)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def check_schema(value: Any, schema: Any, path: Path, fix: str, where: str = "") -> Any:
    """Validate ``value`` against the pydantic type ``schema``; one line on failure."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(schema).validate_python(value, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        at = f" at {location!r}" if location else ""
        raise _fail(path, f"{where}has the wrong shape{at}: {first['msg'].removeprefix('Value error, ')}", fix) from exc


def read_json(path: str | Path, what: str, fix: str, schema: Any = None) -> Any:
    """A JSON file, checked against ``schema`` (a pydantic type such as ``dict[str, float]``).

    The top-level JSON type is checked first, so a list where an object belongs reads
    ``... holds a list, not an object``.
    """
    path = need_file(path, what, fix)
    text = read_text(path, what, fix)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", fix) from exc
    if schema is not None:
        origin = getattr(schema, "__origin__", schema)
        if origin is not list and isinstance(origin, type) and (issubclass(origin, BaseModel) or is_dataclass(origin)):
            origin = dict
        expected = {dict: "an object", list: "a list"}.get(origin)
        if expected and not isinstance(value, origin):
            raise _fail(path, f"holds {_json_type(value)}, not {expected}", fix)
        value = check_schema(value, schema, path, fix)
    return value


def read_yaml(path: str | Path, what: str, fix: str, schema: Any = None) -> Any:
    """A YAML file (safe loader), checked against ``schema`` like :func:`read_json`; a file whose
    top level is a list or a scalar where ``schema`` wants a mapping reads ``... holds a list``."""
    import yaml

    text = read_text(path, what, fix)
    path = Path(path).expanduser()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise _fail(path, f"is not valid YAML ({getattr(exc, 'problem', None) or type(exc).__name__}{at})", fix) from exc
    if schema is not None:
        origin = getattr(schema, "__origin__", schema)
        if origin is dict and not isinstance(value, dict):
            raise _fail(path, f"holds {_json_type(value)}, not a mapping", fix)
        value = check_schema(value, schema, path, fix)
    return value


def read_jsonl(path: str | Path, what: str, fix: str, schema: Any = None, *, allow_empty: bool = False) -> list:
    """One JSON value per non-blank line, each checked against ``schema``."""
    path = need_file(path, what, fix)
    rows = []
    for number, line in enumerate(read_text(path, what, fix, allow_empty=allow_empty).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, f"line {number} is not valid JSON ({exc.msg})", fix) from exc
        rows.append(check_schema(value, schema, path, fix, where=f"line {number} ") if schema is not None else value)
    return rows


def read_npz(path: str | Path, what: str, fix: str, keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive (no pickles); each of ``keys`` must be present."""
    path = need_file(path, what, fix)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an npz archive")
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(path, f"is not a readable .npz archive ({type(exc).__name__})", fix) from exc
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise _fail(path, f"lacks the array(s) {', '.join(missing)}", fix)
    return arrays


def read_safetensors(path: str | Path, what: str, fix: str) -> dict:
    """The tensors of a ``.safetensors`` file (torch tensors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = need_file(path, what, fix)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _fail(path, f"is not a readable safetensors file ({first_line(exc, 80)})", fix) from exc


def safetensors_keys(path: str | Path, what: str, fix: str) -> list[str]:
    """The tensor names of a ``.safetensors`` file, from its header only (no tensor is read)."""
    from safetensors import safe_open

    path = need_file(path, what, fix)
    try:
        with safe_open(str(path), "pt") as handle:
            return list(handle.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged header
        raise _fail(path, f"is not a readable safetensors file ({first_line(exc, 80)})", fix) from exc


def read_faiss_index(path: str | Path, what: str, fix: str):
    """A FAISS index written by ``faiss.write_index``."""
    path = need_file(path, what, fix)
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UserError("FAISS is missing; pip install faiss-cpu") from exc
    try:
        return faiss.read_index(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise _fail(path, "is not a readable FAISS index", fix) from exc


def read_stamp(path: Path) -> Any:
    """A JSON file vlmkit wrote for itself (a resume stamp); ``None`` when absent or damaged, so
    the work it vouches for is redone instead of failing."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
