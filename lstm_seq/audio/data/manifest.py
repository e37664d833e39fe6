"""Utterance manifests: JSON lines ``{"audio_filepath", "duration", "text"}`` (the NeMo convention),
or CSV with the same column names.

Relative audio paths are resolved against the manifest's folder. A malformed line raises
:class:`ManifestError` naming the file and the line number.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from lstm_seq.atomic import write_atomic
from lstm_seq.audio.data.io import AudioReadError, audio_info
from lstm_seq.text_files import read_utf8


class ManifestError(ValueError):
    """A manifest line is not valid; the message names file and line."""


@dataclass(frozen=True)
class Utterance:
    """One manifest entry."""

    audio_filepath: str  # absolute path
    duration: float  # seconds
    text: str  # raw transcript (normalised later by the dataset)


def _entry(raw: dict[str, object], where: str, base: Path) -> Utterance:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in ("audio_filepath", "text") if k not in raw or raw[k] is None]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    for key in ("audio_filepath", "text"):  # a list, number or object would be trained as its Python repr
        if not isinstance(raw[key], str):
            raise ManifestError(f"{where}: {key} must be a string, got {type(raw[key]).__name__} {raw[key]!r:.60}")
    path = Path(os.path.expanduser(raw["audio_filepath"]))
    if not path.is_absolute():
        path = base / path
    dur = raw.get("duration")
    if dur in (None, ""):
        try:
            dur = audio_info(path).duration
        except AudioReadError:
            dur = 0.0  # the dataset reports and skips unreadable files
    try:
        duration = float(dur)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: duration {dur!r} is not a number") from None
    return Utterance(str(path), duration, raw["text"])


def read_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """Read a ``.jsonl``/``.json`` (one object per line) or ``.csv``/``.tsv`` manifest."""
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: manifest not found")
    base = p.parent.resolve()
    out: list[Utterance] = []
    if p.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(
            io.StringIO(_text(p), newline=""), delimiter="\t" if p.suffix.lower() == ".tsv" else ","
        )
        try:
            if reader.fieldnames is None or "audio_filepath" not in reader.fieldnames:
                raise ManifestError(f"{p}:1: CSV header must name audio_filepath,text[,duration]")
            for i, row in enumerate(reader, start=2):
                out.append(_entry(dict(row), f"{p}:{i}", base))
        except csv.Error as exc:  # e.g. a NUL byte
            raise ManifestError(f"{p}:{reader.line_num}: not valid CSV ({exc})") from None
        return out
    for i, line in enumerate(_text(p).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{p}:{i}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise ManifestError(f"{p}:{i}: JSON nested too deeply") from None
        out.append(_entry(raw, f"{p}:{i}", base))
    return out


def _text(p: Path) -> str:
    """The file as UTF-8 text; other bytes raise :class:`ManifestError` naming the file and line."""
    return read_utf8(p, ManifestError)


def write_manifest(
    path: str | os.PathLike[str], utterances: Iterable[Utterance], relative: bool = False
) -> Path:
    """Write JSON lines atomically (:func:`lstm_seq.atomic.write_atomic`) and return the path.

    With ``relative=True`` audio paths under the manifest's folder are written relative to it, so
    the folder can move.
    """
    p = Path(path)
    base = p.parent.resolve()

    def write(fh: IO[bytes]) -> None:
        for u in utterances:
            row = asdict(u)
            if relative and Path(u.audio_filepath).is_absolute():
                try:
                    row["audio_filepath"] = Path(u.audio_filepath).resolve().relative_to(base).as_posix()
                except ValueError:
                    pass
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

    return write_atomic(p, write)
