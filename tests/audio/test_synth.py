"""The embedded synthetic corpus: grammar, speakers split, determinism."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import pytest
import soundfile as sf

from lstm_seq.audio.data import synth
from lstm_seq.audio.data.grammar import TEMPLATES, sample_sentence, vocabulary
from lstm_seq.audio.data.manifest import read_manifest
from lstm_seq.audio.data.synth import SynthConfig, build_corpus, make_speakers
from lstm_seq.audio.vocab import CharVocab

from .conftest import TINY


def test_grammar_size_and_alphabet() -> None:
    assert len(vocabulary()) >= 150
    rng = random.Random(1)
    sentences = {sample_sentence(rng) for _ in range(500)}
    assert len(sentences) > 400  # varied
    v = CharVocab()
    for s in sentences:
        assert v.normalize(s).text == s  # already normalised: nothing dropped
    assert any("'" in t for t in TEMPLATES)


@pytest.mark.parametrize("voices", ["stock", "generated"])
def test_speakers_split_is_disjoint(voices: str) -> None:
    """No speaker in two splits, and no voice (accent+variant, or a generated voice) shared between any two:
    validation and test both measure unseen speakers."""
    spk = make_speakers(SynthConfig(voices=voices))
    assert all(spk[k] for k in ("train", "val", "test"))
    names = {k: {s.name for s in v} for k, v in spk.items()}
    voice = {k: {s.voice for s in v} for k, v in spk.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not names[a] & names[b], (a, b)
        assert not voice[a] & voice[b], (a, b)  # even the accent+variant pair is new
    accents = {s.voice.split("+")[0] for s in spk["train"]}
    assert {s.voice.split("+")[0] for s in spk["test"] + spk["val"]} <= accents


def test_corpus_files_and_speaker_split(tiny_corpus: dict[str, Path]) -> None:
    sizes = {k: len(read_manifest(p)) for k, p in tiny_corpus.items()}
    assert sum(sizes.values()) == TINY.n_utterances and min(sizes.values()) >= 1
    u = read_manifest(tiny_corpus["test"])[0]
    info = sf.info(u.audio_filepath)
    assert info.samplerate == 16000 and info.channels == 1 and 0.3 < info.duration < 6  # short commands too
    assert abs(info.duration - u.duration) < 1e-3
    speakers = json.loads((tiny_corpus["train"].parent / "speakers.json").read_text())
    assert set(speakers) == {"train", "val", "test"}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    """Three shards (100 + 100 + 1 utterances): two worker processes render them in whatever order the pool
    schedules, one renders them in turn; the folders are byte-identical."""
    cfg = SynthConfig(n_utterances=201, val_speakers=2, test_speakers=2, val_fraction=0.2, test_fraction=0.2)
    assert (
        math.ceil(cfg.n_utterances / synth._SHARD) == 3
    )  # the case: several shards, so 2 workers really run
    a = build_corpus(tmp_path / "a", cfg, workers=2)["train"].parent
    b = build_corpus(tmp_path / "b", cfg, workers=1)["train"].parent
    assert len(list((a / "wavs").rglob("*.wav"))) == 201
    assert _digest(a) == _digest(b)
    speakers = json.loads((a / "speakers.json").read_text())
    voice = {k: {s["voice"] for s in v} for k, v in speakers.items()}
    assert not voice["test"] & (voice["train"] | voice["val"]) and not voice["val"] & voice["train"]
    # cached: a second call does not touch the files
    mtime = (a / "train.jsonl").stat().st_mtime_ns
    build_corpus(tmp_path / "a", cfg)
    assert (a / "train.jsonl").stat().st_mtime_ns == mtime
