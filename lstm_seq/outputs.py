"""A run's output files — metrics.json, config.json, predictions.jsonl, summary.md — written atomically.

A reader never sees a half-written file, and a failed write (full or read-only disk, a folder that is a file)
raises :class:`OutputError`, whose one-line message names the file and says whether its previous version is
intact.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
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


def disk_refuses_writes(folder: str | os.PathLike[str]) -> str | None:
    """Why the file system of ``folder`` (or of its nearest existing parent) takes no more writes —
    ``"No space left on device"`` or ``"Read-only file system"`` — or None. For errors that do not carry an
    errno (torch's ``inline_container.cc`` checkpoint writer, libsndfile's ``System error.``)."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    if st.f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS)
    # file systems without fixed counts (btrfs inodes, some network mounts) report totals of 0: not full
    if (st.f_blocks > 0 and st.f_bavail == 0) or (st.f_files > 0 and st.f_favail == 0):
        return os.strerror(errno.ENOSPC)
    return None


class JsonlWriter:
    """A JSONL file written row by row as results come (``transcripts.jsonl``), whole rows only: each row is one
    ``os.write`` (repeated only for what a short write left), so it reaches the OS as soon as it is done, and a
    write that fails (full disk, quota, read-only) cuts the file back to its last whole row and raises
    :class:`OutputError` naming the file and the rows kept. A reader never sees a cut last row.

    Use as a context manager: ``with JsonlWriter(path) as out: out.write({...})``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows = 0  # whole rows in the file
        self._size = 0  # bytes of those rows
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise _output_error(self.path, exc) from exc

    def write(self, row: Any) -> None:
        raw = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        data = memoryview(raw)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._size)  # needs no space: drop the cut row
            except OSError:
                pass
            err = OutputError(
                f"cannot write {self.path}: {exc.strerror or exc} ({self.rows} whole rows kept)"
            )
            err.errno = exc.errno
            raise err from exc
        self._size += len(raw)
        self.rows += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_metrics(out_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """Merge ``metrics`` into ``<out_dir>/metrics.json`` (keys like ``test/wer``) and return its path."""
    path = out_dir / "metrics.json"
    current: dict[str, Any] = {}
    if path.exists():
        current = json.loads(path.read_text())
    current.update({k: _json_safe(v) for k, v in metrics.items()})
    write_json_atomic(path, current)
    return path
