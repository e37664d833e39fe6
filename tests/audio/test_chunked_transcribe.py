"""How a long clip is cut for transcription (lstm_seq.audio.recognizer.chunk_bounds) on a clip several
chunks long: contiguous ranges that cover it, none longer than a chunk, frame-aligned starts, and every cut in
the quietest frame of its search window (here: the silences between the bursts)."""

from __future__ import annotations

import itertools

import numpy as np

from lstm_seq.audio.recognizer import chunk_bounds

SR, HOP = 16000, 160


def _bursts(seconds: float, gaps: list[float], seed: int = 0) -> np.ndarray:
    """Noise bursts with 0.2-s silences starting at ``gaps`` (seconds)."""
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal(int(seconds * SR)).astype(np.float32) * 0.3
    for g in gaps:
        wave[int(g * SR) : int((g + 0.2) * SR)] = 0.0
    return wave


def test_a_clip_of_several_chunks_is_cut_in_its_silences() -> None:
    gaps = [1.7, 3.5, 5.2, 6.9]  # one silence inside the search window of each 2-s chunk
    wave = _bursts(8.0, gaps)
    chunk, search = 2 * SR, SR // 2
    bounds = chunk_bounds(wave, chunk, search, HOP)
    assert len(bounds) == 5  # the case: several chunks
    assert bounds[0][0] == 0 and bounds[-1][1] == len(wave)
    for (_s0, e0), (s1, _) in itertools.pairwise(bounds):
        assert e0 == s1  # contiguous: no sample lost or decoded twice
    for s, e in bounds:
        assert 0 < e - s <= chunk and s % HOP == 0
    for (_, cut), g in zip(bounds[:-1], gaps, strict=True):
        assert int(g * SR) <= cut < int((g + 0.2) * SR), (cut / SR, g)  # inside the silence
        assert float(np.abs(wave[cut : cut + HOP]).max()) == 0.0


def test_a_clip_without_quiet_frames_is_still_cut_within_each_chunk() -> None:
    wave = _bursts(5.0, [])
    bounds = chunk_bounds(wave, SR, SR // 4, HOP)
    assert [e - s <= SR for s, e in bounds] == [True] * len(bounds) and len(bounds) >= 5
    assert bounds[-1][1] == len(wave) and all(b[1] == n[0] for b, n in itertools.pairwise(bounds))
