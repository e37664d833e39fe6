"""A run's output files — metrics.json, config.json, predictions.jsonl, summary.md — written atomically.

A reader never sees a half-written file, and a failed write (full or read-only disk, a folder that is a file)
raises :class:`OutputError`, whose one-line message names the file and says whether its previous version is
intact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lstm_seq.atomic import write_atomic


def _json_safe(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class OutputError(OSError):
    """An output file cannot be written (read-only or full file system, a folder that is a file, …); the
    message names the file and says whether an earlier version of it is still intact."""


def _output_error(path: Path, exc: OSError) -> OutputError:
    kept = "the previous file is unchanged" if path.is_file() else "nothing was written"
    err = OutputError(f"cannot write {path}: {exc.strerror or exc} ({kept})")
    err.errno = exc.errno
    return err


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) with :func:`lstm_seq.atomic.write_atomic`: a reader never sees a half-written
    file and a failed write (disk full, read-only) leaves the previous file intact.

    Raises:
        OutputError: the file cannot be written; names it.
    """
    try:
        write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))
    except OSError as exc:
        raise _output_error(path, exc) from exc


def write_json_atomic(path: Path, payload: Any) -> None:
    """:func:`write_text_atomic` of ``payload`` as indented JSON with sorted keys."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_jsonl_atomic(path: Path, rows: Iterable[Any]) -> None:
    """:func:`write_text_atomic` of one JSON object per line."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_metrics(out_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """Merge ``metrics`` into ``<out_dir>/metrics.json`` (keys like ``test/wer``) and return its path."""
    path = out_dir / "metrics.json"
    current: dict[str, Any] = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update({k: _json_safe(v) for k, v in metrics.items()})
    write_json_atomic(path, current)
    return path
