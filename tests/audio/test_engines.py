"""The corpus from several synthesis engines (eSpeak NG + SVOX Pico): speaker split, determinism, a missing engine."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lstm_seq.audio.data import pico, synth
from lstm_seq.audio.data.manifest import read_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus, make_speakers

needs_pico = pytest.mark.skipif(not pico.available(), reason=pico.MISSING)
BOTH = SynthConfig(
    n_utterances=110,
    engines=("espeak", "pico"),
    pico_share=0.5,
    pico_speakers=12,
    val_speakers=2,
    test_speakers=2,
    val_fraction=0.15,
    test_fraction=0.15,
)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("voices", ["stock", "generated"])
def test_no_heldout_speaker_in_training_across_engines(voices: str) -> None:
    """Every split has speakers of both engines, no speaker is in two splits, and every utterance of the plan is
    spoken by a speaker of its own split (so test and validation speakers are unseen in training)."""
    cfg = SynthConfig(engines=("espeak", "pico"), voices=voices, n_utterances=400)
    spk = make_speakers(cfg)
    for split in synth.SPLITS:
        assert {s.engine for s in spk[split]} == {"espeak", "pico"}, split
    names = {k: {s.name for s in v} for k, v in spk.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not names[a] & names[b], (a, b)
    pico_train = {(s.voice, s.rate, s.pitch, s.tract) for s in spk["train"] if s.engine == "pico"}
    for s in spk["val"] + spk["test"]:
        if s.engine == "pico":  # a new draw of rate, pitch and vocal tract, never a training speaker's
            assert (s.voice, s.rate, s.pitch, s.tract) not in pico_train
    plan = synth._plan(cfg)
    engines = {"espeak": 0, "pico": 0}
    for split, _, _, speaker in plan:
        assert speaker.name in names[split]
        engines[speaker.engine] += 1
    assert engines["pico"] == pytest.approx(cfg.pico_share * len(plan), abs=3)


@needs_pico
def test_two_engine_corpus_regenerates_byte_identically(tmp_path: Path) -> None:
    """Two shards with both engines in each, rendered by two worker processes or by one in turn: byte-identical
    folders; the corpus records its engines; Pico utterances are real speech-length audio at 16 kHz."""
    assert BOTH.n_utterances > synth._SHARD  # two shards, so two workers really run
    a = build_corpus(tmp_path / "a", BOTH, workers=2)
    b = build_corpus(tmp_path / "b", BOTH, workers=1)
    assert _digest(a["train"].parent) == _digest(b["train"].parent)
    engines = json.loads((a["train"].parent / "engines.json").read_text())
    assert set(engines) == {"espeak", "pico"} and engines["pico"].startswith("py-nanotts ")
    assert json.loads((a["train"].parent / "config.json").read_text())["engines"] == ["espeak", "pico"]
    plan = synth._plan(BOTH)
    rows = {s: read_manifest(a[s]) for s in synth.SPLITS}
    picos = [(s, i, t) for s, i, t, spk in plan if spk.engine == "pico"]
    assert len(picos) >= 50
    per_engine = {e: read_manifest(a["test"].parent / f"test-{e}.jsonl") for e in ("espeak", "pico")}
    assert len(per_engine["pico"]) == sum(s == "test" for s, _, _ in picos) > 0
    assert sorted(u.audio_filepath for v in per_engine.values() for u in v) == sorted(
        u.audio_filepath for u in rows["test"]
    )
    for split, i, text in picos[:5]:
        u = rows[split][i]
        assert u.text == text
        wav, sr = sf.read(u.audio_filepath)
        assert sr == 16000 and 0.3 < len(wav) / sr < 8 and np.abs(wav).max() > 0.2


@needs_pico
def test_vocal_tract_factor_changes_the_voice(tmp_path: Path) -> None:
    """Two Pico speakers that differ only in the vocal-tract factor get different audio of about the same
    length (rate and pitch are compensated)."""
    base = synth.Speaker("a", "en-US", 170, 100, engine="pico", tract=1.0)
    cfg = SynthConfig(snr_db=(60.0, 60.0))
    lengths = []
    for k, tract in enumerate((1.0, 1.15)):
        path = tmp_path / f"{k}.wav"
        spk = synth.Speaker(f"s{k}", base.voice, base.rate, base.pitch, engine="pico", tract=tract)
        lengths.append(synth._render(cfg, "train", 0, "set a timer for five minutes", spk, str(path), None))
    a, b = (sf.read(tmp_path / f"{k}.wav")[0] for k in range(2))
    assert lengths[1] == pytest.approx(lengths[0], rel=0.12)
    assert a.shape != b.shape or not np.allclose(a, b, atol=1e-3)


def test_missing_engine_is_skipped_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the Pico wheel does not exist the corpus is built from eSpeak NG alone, says so, and records it; a
    corpus of Pico alone is an error that names the setting."""
    monkeypatch.setattr(pico, "available", lambda: False)  # as on macOS: the package is not installed
    cfg = SynthConfig(n_utterances=12, engines=("espeak", "pico"), val_speakers=1, test_speakers=1)
    with caplog.at_level(logging.WARNING, logger="lstm_seq.audio.data.synth"):
        out = build_corpus(tmp_path, cfg, workers=1)
    assert "SVOX Pico is not installed" in caplog.text and "py-nanotts" in caplog.text
    assert "built from eSpeak NG only" in caplog.text
    folder = out["train"].parent
    assert json.loads((folder / "config.json").read_text())["engines"] == ["espeak"]
    assert set(json.loads((folder / "engines.json").read_text())) == {"espeak"}
    assert sum(len(read_manifest(p)) for p in out.values()) == 12
    with pytest.raises(RuntimeError, match=r"data\.engines=\[pico\].*py-nanotts"):
        build_corpus(tmp_path, SynthConfig(engines=("pico",)), workers=1)


def test_unknown_engine_is_named() -> None:
    with pytest.raises(ValueError, match=r"data\.engines"):
        SynthConfig(engines=("espeak", "festival"))
