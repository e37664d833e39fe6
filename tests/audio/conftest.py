"""Fixtures for the speech tests: a tiny synthetic corpus, small audio files of every kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lstm_seq.audio.data.synth import SynthConfig, build_corpus

TINY = SynthConfig(n_utterances=36, val_speakers=2, test_speakers=2, val_fraction=0.15, test_fraction=0.15)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Manifests of a 36-utterance synthetic corpus (train/val/test)."""
    return build_corpus(tmp_path_factory.mktemp("synth"), TINY, workers=1)


def speechlike(seconds: float = 1.5, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-speech-like signal: harmonics of a gliding pitch, syllable envelope, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    env = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) + 0.05
    return (0.3 * voiced * env / 3 + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture()
def audio_dir(tmp_path: Path) -> Path:
    """A folder with good and bad audio files (and a subfolder)."""
    d = tmp_path / "audio"
    (d / "sub").mkdir(parents=True)
    sf.write(d / "speech.wav", speechlike(1.5), 16000)
    stereo = np.stack([speechlike(1.0, 44100, 1), speechlike(1.0, 44100, 2)], axis=1)
    sf.write(d / "sub" / "stereo44k.flac", stereo, 44100)
    sf.write(d / "sub" / "clip.ogg", speechlike(0.8, 22050), 22050, format="OGG", subtype="VORBIS")
    sf.write(d / "long.wav", np.tile(speechlike(1.5), 5), 16000)  # 7.5 s: chunked with chunk_s < 7.5
    sf.write(d / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(d / "zero_length.wav", np.zeros(0, np.float32), 16000)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (d / "notes.txt").write_text("not audio at all\n")
    return d
