"""Datasets (skipping with counted reasons), collation and duration bucketing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lstm_seq.audio.data.bucketing import DurationBatchSampler
from lstm_seq.audio.data.datasets import SpeechDataset, collate
from lstm_seq.audio.data.manifest import Utterance
from lstm_seq.audio.vocab import CharVocab

from .conftest import speechlike


def test_bad_inputs_are_skipped_and_counted(audio_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = str(audio_dir / "speech.wav")
    utts = [
        Utterance(good, 1.5, "Turn LEFT, now!"),
        Utterance(good, 1.5, "room 42 ☺"),  # 3 out-of-vocabulary characters
        Utterance(str(audio_dir / "long.wav"), 7.5, "too long"),
        Utterance(str(audio_dir / "missing.wav"), 1.0, "gone"),
        Utterance(str(audio_dir / "empty.wav"), 1.0, "empty"),
        Utterance(str(audio_dir / "corrupt.wav"), 1.0, "corrupt"),
        Utterance(str(audio_dir / "notes.txt"), 1.0, "text"),
        Utterance(str(audio_dir / "zero_length.wav"), 0.0, "zero"),
        Utterance(good, 1.5, "123 !!"),  # empty after normalisation
        Utterance(str(audio_dir / "silence.wav"), 1.0, "silent"),
    ]
    with caplog.at_level(logging.WARNING):
        ds = SpeechDataset(utts, CharVocab(), max_duration=5.0, name="unit")
    assert len(ds) == 3
    assert ds.skipped["unreadable audio"] == 5
    assert ds.skipped["longer than max_duration=5.0s"] == 1
    assert ds.skipped["empty transcript"] == 1
    assert ds.n_oov_chars == 3 and ds.n_oov_utts == 1  # only kept utterances are counted
    assert "skipped 5 utterance(s): unreadable audio" in caplog.text
    assert ds.texts[0] == "turn left now" and ds.texts[1] == "room"
    items = [ds[i] for i in range(len(ds))]
    assert items[2] is None and ds.skipped["silent audio"] == 1  # silence is found when read
    batch = collate(items)
    assert batch is not None and len(batch) == 2
    assert batch.wave.shape == (2, 24000) and batch.targets.shape[1] == len("turn left now")
    assert collate([None]) is None


def test_bucketing_budget_and_coverage() -> None:
    rng = np.random.default_rng(0)
    durations = [*list(rng.uniform(0.5, 12.0, size=300)), 40.0]
    s = DurationBatchSampler(durations, max_frames=3000, shuffle=True, seed=3)
    seen: list[int] = []
    padded = 0
    for batch in s:
        longest = max(s.frames[i] for i in batch)
        assert longest * len(batch) <= 3000 or len(batch) == 1  # an over-budget file goes alone
        padded += longest * len(batch) - sum(s.frames[i] for i in batch)
        seen += batch
    assert sorted(seen) == list(range(301))
    assert padded / sum(s.frames) < 0.15  # few padded frames
    assert [b for b in s] != [b for b in s]  # a new order each epoch
    a = DurationBatchSampler(durations, 3000, shuffle=False)
    assert list(a) == list(a) and len(a) == len(list(a))


def test_resampled_audio_in_dataset(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", speechlike(1.0, 8000), 8000)
    ds = SpeechDataset([Utterance(str(tmp_path / "a.wav"), 1.0, "hi")], CharVocab(), sample_rate=16000)
    assert ds[0]["wave"].shape[0] == 16000


def test_sortagrad_first_epoch_short_to_long() -> None:
    durations = [3.0, 1.0, 2.0, 5.0, 4.0, 0.5] * 10
    s = DurationBatchSampler(
        durations, max_frames=1200, shuffle=True, seed=0, jitter=0.0, sorted_first_epoch=True
    )
    first = [max(s.frames[i] for i in b) for b in s]
    assert first == sorted(first)
    second = [max(s.frames[i] for i in b) for b in s]
    assert sorted(second) == sorted(first) and second != first
