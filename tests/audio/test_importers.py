"""Importers on tiny fake trees in each dataset's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lstm_seq.audio.data.importers import (
    DatasetLayoutError,
    import_commonvoice,
    import_librispeech,
    import_ljspeech,
)
from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.data.manifest import read_manifest

from .conftest import speechlike


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speechlike(seconds, sr), sr, format=fmt)


def test_librispeech_tree(tmp_path: Path) -> None:
    root = tmp_path / "LibriSpeech"
    for subset, spk, chap in [("train-clean-100", "19", "198"), ("dev-clean", "84", "121")]:
        d = root / subset / spk / chap
        _wav(d / f"{spk}-{chap}-0000.flac", 0.5, fmt="FLAC")
        _wav(d / f"{spk}-{chap}-0001.flac", 0.75, fmt="FLAC")
        (d / f"{spk}-{chap}.trans.txt").write_text(
            f"{spk}-{chap}-0000 NORTHANGER ABBEY\n{spk}-{chap}-0001 IT'S A TRUTH\n{spk}-{chap}-0002 MISSING FILE\n"
        )
    out = import_librispeech(root, tmp_path / "manifests")
    assert set(out) == {"train-clean-100", "dev-clean"}
    utts = read_manifest(out["train-clean-100"])
    assert [u.text for u in utts] == ["NORTHANGER ABBEY", "IT'S A TRUTH"]  # the missing file is skipped
    assert utts[1].duration == pytest.approx(0.75)
    # a single subset folder as root
    single = import_librispeech(root / "dev-clean", tmp_path / "m2")
    assert list(single) == ["dev-clean"] and len(read_manifest(single["dev-clean"])) == 2
    with pytest.raises(DatasetLayoutError, match="not a LibriSpeech tree"):
        import_librispeech(tmp_path / "manifests", tmp_path / "m3")


def test_ljspeech_folder(tmp_path: Path) -> None:
    root = tmp_path / "LJSpeech-1.1"
    lines = []
    for i in range(40):
        _wav(root / "wavs" / f"LJ001-{i:04d}.wav", 0.3, 22050)
        lines.append(f"LJ001-{i:04d}|Printing, in 1 sense|Printing, in one sense")
    lines.append("broken line without separators")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    out = import_ljspeech(root, tmp_path / "m", val_fraction=0.2, test_fraction=0.2)
    sizes = {k: len(read_manifest(p)) for k, p in out.items()}
    assert sum(sizes.values()) == 40 and all(n > 0 for n in sizes.values())
    first = json.loads(out["train"].read_text().splitlines()[0])
    assert first["text"] == "Printing, in one sense" and Path(first["audio_filepath"]).is_absolute()
    again = import_ljspeech(root, tmp_path / "m2", val_fraction=0.2, test_fraction=0.2)
    assert again["test"].read_text() == out["test"].read_text()  # deterministic split


def test_commonvoice_folder(tmp_path: Path) -> None:
    root = tmp_path / "cv" / "en"
    _wav(root / "clips" / "a.ogg", 0.4, 48000, fmt="OGG")
    _wav(root / "clips" / "b.ogg", 0.6, 48000, fmt="OGG")
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\n"
    (root / "train.tsv").write_text(header + "c1\ta.ogg\tHello “world”\t2\t0\nc2\tgone.ogg\tMissing\t1\t0\n")
    (root / "test.tsv").write_text(header + "c3\tb.ogg\tGood morning\t2\t0\n")
    (root / "clip_durations.tsv").write_text("clip\tduration[ms]\nb.ogg\t600\n")
    out = import_commonvoice(root, tmp_path / "m")
    assert set(out) == {"train", "test"}
    (a,) = read_manifest(out["train"])
    assert a.text == "Hello “world”" and a.duration == pytest.approx(0.4, abs=0.01)
    (b,) = read_manifest(out["test"])
    assert b.duration == pytest.approx(0.6)
    with pytest.raises(DatasetLayoutError, match="no clips/"):
        import_commonvoice(tmp_path, tmp_path / "m2")


def test_commonvoice_mp3_clips_import_and_load_at_16k(tmp_path: Path) -> None:
    """Common Voice ships 48 kHz MP3 clips: they import (durations read from the MP3 itself when
    clip_durations.tsv is absent) and load mono at the configured rate."""
    root = tmp_path / "cv-corpus" / "en"
    (root / "clips").mkdir(parents=True)
    for name, seconds in (("common_voice_en_1.mp3", 1.0), ("common_voice_en_2.mp3", 1.5)):
        sf.write(root / "clips" / name, speechlike(seconds, 48000), 48000, format="MP3")
    header = "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\tage\tgender\n"
    rows = "".join(f"c{i}\tcommon_voice_en_{i}.mp3\ts{i}\tTurn left {i}\t2\t0\t\t\n" for i in (1, 2))
    (root / "dev.tsv").write_text(header + rows)
    out = import_commonvoice(root, tmp_path / "m")
    utts = read_manifest(out["dev"])
    assert [u.text for u in utts] == ["Turn left 1", "Turn left 2"]
    # MP3 frames pad the end a little: the duration is the clip's length to within a frame
    assert [round(u.duration, 1) for u in utts] == [1.0, 1.5]
    wav = load_audio(utts[1].audio_filepath, 16000)
    assert wav.ndim == 1 and abs(wav.shape[0] / 16000 - 1.5) < 0.06
    assert np.abs(wav).max() > 0.05  # decoded audio, not silence
