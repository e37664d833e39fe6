"""In-memory waveforms as users have them: stereo in soundfile's (N, C) layout and channels-first (C, N), integer
PCM, NaN chunks, for :class:`Recognizer` and streaming; inputs that are not audio items get a clear TypeError;
hidden files and folders are not transcribed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lstm_seq.audio import Recognizer
from lstm_seq.audio.data.io import as_mono, find_audio_files
from lstm_seq.audio.streaming import StreamingSession
from tests.audio.conftest import speechlike
from tests.audio.test_recognizer import _module
from tests.audio.test_streaming import streaming_module


def _stereo(seconds: float = 1.0) -> np.ndarray:
    """(N, 2) float32, soundfile's layout."""
    return np.stack([speechlike(seconds, 16000, 1), speechlike(seconds, 16000, 2)], axis=1)


def test_as_mono_layouts_and_integer_pcm() -> None:
    st = _stereo(0.1)
    mono = st.mean(1)
    np.testing.assert_allclose(as_mono(st), mono, atol=1e-7)  # (N, C)
    np.testing.assert_allclose(as_mono(st.T), mono, atol=1e-7)  # (C, N)
    np.testing.assert_allclose(as_mono(torch.from_numpy(st)), mono, atol=1e-7)
    pcm = (mono * 32767).astype(np.int16)
    np.testing.assert_allclose(as_mono(pcm), mono, atol=1e-4)
    np.testing.assert_allclose(as_mono(pcm.astype(np.int32) << 16), mono, atol=1e-4)
    np.testing.assert_allclose(as_mono((pcm // 256 + 128).astype(np.uint8)), mono, atol=1e-2)
    for bad, msg in [
        (np.zeros((4, 4), np.float32), "cannot tell channels"),
        (np.zeros((100, 20), np.float32), "at most 8 channels"),
        (np.arange(10), "dtype int64"),
        (np.zeros(3, bool), "dtype bool"),
        (np.array([0.1, np.inf], np.float32), "NaN or infinite"),
        (np.zeros(0, np.float32), "non-empty"),
    ]:
        with pytest.raises(ValueError, match=msg):
            as_mono(bad)


def test_recognizer_takes_soundfile_stereo_and_int16() -> None:
    asr = Recognizer(_module(), decode="greedy")
    st = _stereo()
    by_layout = asr.transcribe([(st, 16000), (st.T.copy(), 16000), (st.mean(1), 16000)])
    assert all(r.ok for r in by_layout)
    # before: the (N, 2) array was averaged over time, 2 samples long (ok, text '', 0.0001 s)
    assert [r.duration for r in by_layout] == [pytest.approx(1.0)] * 3
    assert by_layout[0].text == by_layout[1].text == by_layout[2].text
    pcm = (st * 32767).astype(np.int16)
    assert asr.transcribe((pcm, 16000))[0].text == by_layout[0].text


def test_streaming_stereo_int16_and_nan_chunks() -> None:
    m = streaming_module()  # global CMVN: unscaled int16 would shift every frame
    st = _stereo(1.2)
    pcm = (st * 32767).astype(np.int16)
    for chunks, as_float in ((st, st), (pcm, pcm.astype(np.float32) / 32768)):
        ref = StreamingSession(m)
        for i in range(0, len(st), 1600):
            ref.push(as_float[i : i + 1600].mean(1))
        ref.finish()
        s = StreamingSession(m)
        for i in range(0, len(chunks), 1600):
            s.push(chunks[i : i + 1600])  # (1600, 2): before, flattened to 3200 samples of one channel
        s.finish()
        assert s.log_probs.shape == ref.log_probs.shape
        torch.testing.assert_close(s.log_probs, ref.log_probs, atol=1e-4, rtol=0)
    s = StreamingSession(m)
    s.push(st[:1600, 0])
    before = s.log_probs.clone()
    with pytest.raises(ValueError, match="NaN or infinite"):
        s.push(np.full(1600, np.nan, np.float32))
    s.push(st[1600:3200, 0])  # the session goes on as if the bad chunk had never come
    assert torch.isfinite(s.log_probs).all() and torch.equal(s.log_probs[: len(before)], before)


def test_recognizer_refuses_what_is_not_an_item(tmp_path: Path) -> None:
    asr = Recognizer(_module(), decode="greedy")
    with pytest.raises(TypeError, match=r"takes a path, a folder, a waveform.*got int"):
        asr.transcribe(5)  # type: ignore[arg-type]
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, speechlike(0.5), 16000)
    sf.write(b, speechlike(0.6), 16000)
    out = asr.transcribe((str(a), str(b)))  # a tuple of two paths is two items, not (wave, rate)
    assert [r.path for r in out] == [str(a), str(b)] and all(r.ok for r in out)
    bad = asr.transcribe([(str(a), str(b)), (np.zeros(10), "fast")])
    assert not bad[0].ok and "not a (waveform, sample_rate)" in bad[0].error
    assert not bad[1].ok and "not a (waveform, sample_rate)" in bad[1].error


def test_hidden_files_and_folders_are_not_transcribed(tmp_path: Path) -> None:
    for rel in ["a.wav", ".hidden.wav", ".git/b.wav", "sub/.cache/c.wav", "sub/d.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, speechlike(0.3), 16000)
    assert find_audio_files(tmp_path) == [tmp_path / "a.wav", tmp_path / "sub" / "d.wav"]
    out = Recognizer(_module(), decode="greedy").transcribe(tmp_path)
    assert [r.path for r in out] == [str(tmp_path / "a.wav"), str(tmp_path / "sub" / "d.wav")]
