"""Write JSON-lines manifests from datasets already on disk; nothing is downloaded.

* LibriSpeech: ``SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` + ``SPEAKER-CHAPTER.trans.txt``
  (``UTT-ID TRANSCRIPT`` per line). One manifest per subset folder.
* LJSpeech: ``metadata.csv`` (``id|text|normalised text``, no header) + ``wavs/<id>.wav``; split by
  a hash of the id (deterministic).
* Common Voice: ``clips/`` + ``train.tsv``, ``dev.tsv``, ``test.tsv`` (columns ``path`` and
  ``sentence``); durations from ``clip_durations.tsv`` when present, else from the file headers.

Every importer returns ``{manifest name: path}`` and counts entries whose audio is missing or
unreadable (skipped, logged) — one bad file never stops the import.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

from lstm_seq.audio.data.io import AudioReadError, audio_info
from lstm_seq.audio.data.manifest import Utterance, write_manifest

log = logging.getLogger(__name__)


class DatasetLayoutError(RuntimeError):
    """The folder does not look like the dataset it was given as."""


def _utterance(
    path: Path, text: str, skipped: Counter[str], duration: float | None = None
) -> Utterance | None:
    if duration is None:
        try:
            duration = audio_info(path).duration
        except AudioReadError as exc:
            skipped["unreadable audio"] += 1
            log.warning("skipping %s", exc)
            return None
    elif not path.is_file():
        skipped["missing audio"] += 1
        log.warning("skipping %s: file not found", path)
        return None
    return Utterance(str(path.resolve()), round(duration, 4), text)


def import_librispeech(root: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Manifests for each LibriSpeech subset under ``root`` (or for ``root`` itself when it is a subset)."""
    base = Path(root)
    transcripts = sorted(base.rglob("*.trans.txt"))
    if not transcripts:
        raise DatasetLayoutError(
            f"{base}: no *.trans.txt files: not a LibriSpeech tree (SPEAKER/CHAPTER/*.trans.txt)"
        )
    by_subset: dict[str, list[Utterance]] = {}
    skipped: Counter[str] = Counter()
    for trans in transcripts:
        rel = trans.relative_to(base).parts
        subset = rel[0] if len(rel) >= 4 else base.name  # SUBSET/SPK/CHAP/x.trans.txt vs SPK/CHAP/x.trans.txt
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            if not text:
                skipped["empty transcript"] += 1
                log.warning("%s:%d: no transcript after the id", trans, n)
                continue
            audio = next(
                (
                    trans.parent / f"{uid}{ext}"
                    for ext in (".flac", ".wav")
                    if (trans.parent / f"{uid}{ext}").exists()
                ),
                trans.parent / f"{uid}.flac",
            )
            u = _utterance(audio, text, skipped)
            if u is not None:
                by_subset.setdefault(subset, []).append(u)
    _report("librispeech", skipped)
    return {
        name: write_manifest(Path(out_dir) / f"{name}.jsonl", utts)
        for name, utts in sorted(by_subset.items())
    }


def _split_of(key: str, val_fraction: float, test_fraction: float) -> str:
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "val" if h < test_fraction + val_fraction else "train"


def import_ljspeech(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    val_fraction: float = 0.03,
    test_fraction: float = 0.03,
) -> dict[str, Path]:
    """``train``/``val``/``test`` manifests for an LJSpeech folder (normalised text column)."""
    base = Path(root)
    meta = base / "metadata.csv"
    if not meta.is_file():
        raise DatasetLayoutError(f"{base}: no metadata.csv: not an LJSpeech folder (metadata.csv + wavs/)")
    splits: dict[str, list[Utterance]] = {"train": [], "val": [], "test": []}
    skipped: Counter[str] = Counter()
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2:
            skipped["malformed metadata line"] += 1
            log.warning("%s:%d: expected id|text|normalised text", meta, n)
            continue
        text = parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]
        u = _utterance(base / "wavs" / f"{parts[0]}.wav", text, skipped)
        if u is not None:
            splits[_split_of(parts[0], val_fraction, test_fraction)].append(u)
    _report("ljspeech", skipped)
    return {name: write_manifest(Path(out_dir) / f"{name}.jsonl", utts) for name, utts in splits.items()}


def import_commonvoice(root: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Manifests for each of ``train.tsv``, ``dev.tsv``, ``test.tsv`` (and any other split TSV
    with ``path`` and ``sentence`` columns) found in ``root``."""
    base = Path(root)
    clips = base / "clips"
    if not clips.is_dir():
        raise DatasetLayoutError(f"{base}: no clips/ folder: not a Common Voice release (clips/ + *.tsv)")
    durations: dict[str, float] = {}
    dur_file = base / "clip_durations.tsv"
    if dur_file.is_file():
        with dur_file.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                try:
                    durations[row["clip"]] = float(row["duration[ms]"]) / 1000
                except (KeyError, ValueError, TypeError):
                    continue
    out: dict[str, Path] = {}
    skipped: Counter[str] = Counter()
    for tsv in sorted(base.glob("*.tsv")):
        with tsv.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or not {"path", "sentence"} <= set(reader.fieldnames):
                continue  # clip_durations.tsv, reported.tsv, …
            utts = []
            for row in reader:
                u = _utterance(
                    clips / row["path"], row["sentence"] or "", skipped, durations.get(row["path"])
                )
                if u is not None:
                    utts.append(u)
        out[tsv.stem] = write_manifest(Path(out_dir) / f"{tsv.stem}.jsonl", utts)
    if not out:
        raise DatasetLayoutError(f"{base}: no TSV with 'path' and 'sentence' columns")
    _report("commonvoice", skipped)
    return out


def _report(name: str, skipped: Counter[str]) -> None:
    for reason, n in skipped.items():
        log.warning("%s import: skipped %d entr%s: %s", name, n, "y" if n == 1 else "ies", reason)


IMPORTERS = {
    "librispeech": import_librispeech,
    "ljspeech": import_ljspeech,
    "commonvoice": import_commonvoice,
}
