"""The embedded synthetic corpus: grammar, speakers split, determinism."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import soundfile as sf

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


def test_speakers_split_is_disjoint() -> None:
    spk = make_speakers(SynthConfig())
    names = {k: {s.name for s in v} for k, v in spk.items()}
    assert not names["test"] & (names["train"] | names["val"])
    assert not names["val"] & names["train"]
    voices = {k: {s.voice for s in v} for k, v in spk.items()}
    assert not voices["test"] & voices["train"]  # even the accent+variant pair is new
    accents = {s.voice.split("+")[0] for s in spk["train"]}
    assert {s.voice.split("+")[0] for s in spk["test"]} <= accents


def test_corpus_files_and_speaker_split(tiny_corpus: dict[str, Path]) -> None:
    sizes = {k: len(read_manifest(p)) for k, p in tiny_corpus.items()}
    assert sum(sizes.values()) == TINY.n_utterances and min(sizes.values()) >= 1
    u = read_manifest(tiny_corpus["test"])[0]
    info = sf.info(u.audio_filepath)
    assert info.samplerate == 16000 and info.channels == 1 and 0.8 < info.duration < 6
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


def test_regeneration_is_byte_identical(tmp_path: Path, tiny_corpus: dict[str, Path]) -> None:
    cfg = SynthConfig(n_utterances=10, val_speakers=2, test_speakers=2, val_fraction=0.2, test_fraction=0.2)
    a = build_corpus(tmp_path / "a", cfg, workers=2)["train"].parent
    b = build_corpus(tmp_path / "b", cfg, workers=1)["train"].parent
    assert _digest(a) == _digest(b)
    # cached: a second call does not touch the files
    mtime = (a / "train.jsonl").stat().st_mtime_ns
    build_corpus(tmp_path / "a", cfg)
    assert (a / "train.jsonl").stat().st_mtime_ns == mtime
