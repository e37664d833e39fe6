"""Generated eSpeak NG voices: determinism, variety, the speaker split, the stock corpus still available."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from lstm_seq.audio.data.synth import SynthConfig, generate_voice, make_speakers
from tests._env import clean_env


def test_voice_generation_is_deterministic_and_varied() -> None:
    a = generate_voice(random.Random("voice-0-1"), "spk0001")
    assert a == generate_voice(random.Random("voice-0-1"), "spk0001")
    assert a != generate_voice(random.Random("voice-0-2"), "spk0001")
    lines = a.splitlines()
    assert lines[0] == "language variant" and "name spk0001" in lines
    keys = {line.split()[0] for line in lines}
    assert {"pitch", "formant", "tone", "klatt", "voicing", "consonants", "intonation", "words"} <= keys
    assert "breath" not in keys  # not reproducible in eSpeak NG
    gen = SynthConfig(voices="generated")
    assert make_speakers(gen) == make_speakers(gen)


def test_generated_speakers_are_distinct_and_split() -> None:
    cfg = SynthConfig(voices="generated")
    spk = make_speakers(cfg)
    assert sum(len(v) for v in spk.values()) == cfg.n_speakers
    assert (len(spk["val"]), len(spk["test"])) == (cfg.val_speakers, cfg.test_speakers)
    files = [s.voice_file for v in spk.values() for s in v]
    assert len(set(files)) == len(files)  # a voice of its own per speaker
    voices = {k: {s.voice for s in v} for k, v in spk.items()}
    assert not voices["test"] & (voices["train"] | voices["val"]) and not voices["val"] & voices["train"]
    sexes = {line for f in files for line in f.splitlines() if line.startswith("gender")}
    assert sexes == {"gender male", "gender female"}
    stock = make_speakers(replace(cfg, voices="stock"))
    assert all(s.voice_file == "" for v in stock.values() for s in v)
    with pytest.raises(ValueError, match="voices"):
        make_speakers(replace(cfg, voices="other"))


def test_generated_voice_is_spoken(tmp_path: Path) -> None:
    """A generated voice file loads in eSpeak NG (in a fresh process: the engine is process-wide)."""
    import subprocess
    import sys

    code = (
        "import random,sys\n"
        "from lstm_seq.audio.data.espeak import ESpeak, voice_data_dir\n"
        "from lstm_seq.audio.data.synth import generate_voice\n"
        "d = voice_data_dir(sys.argv[1], {'spk0003': generate_voice(random.Random('voice-0-3'), 'spk0003')})\n"
        "e = ESpeak.get(d)\n"
        "a = e.synth('turn left', 'en-gb-scotland+spk0003'); b = e.synth('turn left', 'en-us+m3')\n"
        "print(len(a), len(b))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "espeak")],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.split()
    assert int(out[0]) > 0.3 * 22050 and int(out[1]) > 0


def test_generated_corpus_regenerates_byte_identically(tmp_path: Path) -> None:
    from lstm_seq.audio.data.synth import build_corpus

    from .test_synth import _digest

    cfg = SynthConfig(
        n_utterances=8, voices="generated", n_speakers=12, val_speakers=2, test_speakers=2,
        val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    a = build_corpus(tmp_path / "a", cfg, workers=2)["train"].parent
    b = build_corpus(tmp_path / "b", cfg, workers=1)["train"].parent
    assert _digest(a) == _digest(b)
    assert not (a / "espeak").exists()  # the per-shard eSpeak data folders are removed
