"""The Python API of the recogniser: every item type, per-item errors, batching, word times, N-best, and
``pipelines.asr.transcribe``'s rows being the API's results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lstm_seq.audio import Recognizer
from lstm_seq.audio.data.io import load_audio
from lstm_seq.audio.decoding.align import ctc_align, word_spans
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.module import ASRModule
from lstm_seq.audio.transcribe import transcribe_to_jsonl
from tests.audio.conftest import speechlike

TEXTS = ["turn left", "go to the red door", "turn right at the door", "go left"]


def _module(seed: int = 0) -> ASRModule:
    torch.manual_seed(seed)
    m = ASRModule(model={"hidden_size": 16, "num_layers": 1, "conv_channels": 4})
    m.decoding = DecodingSetup.from_texts(TEXTS)
    return m.eval()


@pytest.fixture(scope="module")
def module() -> ASRModule:
    return _module()


def test_every_item_type_and_per_item_errors(module: ASRModule, audio_dir: Path) -> None:
    asr = Recognizer(module, decode="greedy")
    wave = load_audio(audio_dir / "speech.wav", 16000)
    stereo44 = np.stack([speechlike(1.0, 44100, 1), speechlike(1.0, 44100, 2)])  # (C, N) at 44.1 kHz
    items = [
        audio_dir / "speech.wav",  # a path
        str(audio_dir / "sub"),  # a folder: its two files, sorted
        wave,  # a numpy waveform, rate from sample_rate=
        (torch.from_numpy(stereo44), 44100),  # a torch (C, N) waveform with its rate
        audio_dir / "missing.wav",
        audio_dir / "corrupt.wav",
        np.full(8000, np.nan, np.float32),
        42,
    ]
    out = asr.transcribe(items, batch_size=3, sample_rate=16000)
    paths = [r.path for r in out]
    assert paths[:4] == [str(audio_dir / "speech.wav"), str(audio_dir / "sub" / "clip.ogg"),
                         str(audio_dir / "sub" / "stereo44k.flac"), "<array 2>"]  # fmt: skip
    assert [r.ok for r in out] == [True] * 5 + [False] * 4
    assert "missing.wav" in out[5].error and "corrupt.wav" in out[6].error
    assert "NaN" in out[7].error and "not a path" in out[8].error
    whole = asr.transcribe(audio_dir / "speech.wav")[0]
    assert out[0].text == whole.text == out[3].text  # the file and its samples give one text
    assert out[0].duration == pytest.approx(1.5)
    # the stereo 44.1 kHz array is mixed down and resampled as the loader does with the same file
    file44 = asr.transcribe(audio_dir / "sub" / "stereo44k.flac")[0]
    assert out[4].text == file44.text and out[4].duration == pytest.approx(file44.duration, abs=1e-3)
    with pytest.raises(ValueError, match="batch_size"):
        asr.transcribe(wave, batch_size=0, sample_rate=16000)
    no_rate = asr.transcribe(wave)[0]
    assert not no_rate.ok and "sample rate" in no_rate.error


def test_batching_and_chunking_keep_the_texts(module: ASRModule, audio_dir: Path) -> None:
    """Files batched together (padded) decode as they do alone; a 7.5-s file cut into ≥ 4 chunks of ≤ 2 s
    gives the texts of its chunks decoded one by one, joined."""
    files = sorted(p for p in audio_dir.rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    asr = Recognizer(module, decode="beam", chunk_s=2.0)
    together = asr.transcribe(files, batch_size=8)
    alone = [asr.transcribe(f, batch_size=1)[0] for f in files]
    assert [r.to_dict() for r in together] == [r.to_dict() for r in alone]
    long_wave = load_audio(audio_dir / "long.wav", 16000)
    bounds = asr.chunk_bounds(long_wave)
    assert len(bounds) >= 4
    pieces = [asr.transcribe(long_wave[s:e], sample_rate=16000)[0].text for s, e in bounds]
    long_row = next(r for r in together if r.path.endswith("long.wav"))
    assert long_row.text == " ".join(p for p in pieces if p) and long_row.text


def test_mode_transcribe_rows_are_the_apis_results(
    module: ASRModule, audio_dir: Path, tmp_path: Path
) -> None:
    asr = Recognizer(module, decode="beam", chunk_s=2.0)
    counts = transcribe_to_jsonl(asr, audio_dir, tmp_path / "t.jsonl", batch_size=2)
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert counts == {"files": 9, "transcribed": 5, "errors": 4}
    assert rows == [r.to_dict() for r in asr.transcribe(audio_dir)]
    assert {"path", "text", "duration"} == set(rows[0]) or "error" in rows[0]


def test_ctc_alignment_finds_the_frames_of_each_character() -> None:
    """Emissions that say "ab" on frames 1-2 and "b" again on 4 (blank between): the alignment puts each
    target on exactly those frames."""
    V = 4  # blank, a, b, space
    frames = [0, 1, 1, 0, 2, 0]
    lp = torch.full((len(frames), V), -8.0)
    for t, k in enumerate(frames):
        lp[t, k] = -0.01
    assert ctc_align(lp, [1, 2]) == [(1, 3, pytest.approx(-0.02)), (4, 5, pytest.approx(-0.01))]
    assert ctc_align(lp[:1], [1, 2]) == []  # one frame cannot hold two characters
    ids = {"a": 1, "b": 2, " ": 3}

    def encode(text: str) -> list[int]:
        return [ids[c] for c in text]

    spans = word_spans(lp, "a b", encode)
    assert [(s.word, s.start, s.end) for s in spans] == [("a", 1, 3), ("b", 4, 5)]
    assert all(0.99 < s.confidence <= 1.0 for s in spans)
    unsure = lp.clone()
    unsure[1:3, 1], unsure[1:3, 0] = np.log(0.3), np.log(0.7)
    assert word_spans(unsure, "a b", encode)[0].confidence == pytest.approx(0.3, abs=1e-3)


def test_word_times_confidence_and_nbest(module: ASRModule, audio_dir: Path) -> None:
    asr = Recognizer(module, decode={"beam": True, "beam_size": 8}, chunk_s=2.0)
    r = asr.transcribe(audio_dir / "long.wav", word_timestamps=True, nbest=3)[0]
    assert r.words is not None and " ".join(w.word for w in r.words) == r.text and r.words
    starts = [w.start for w in r.words]
    assert starts == sorted(starts) and all(0 <= w.start < w.end <= r.duration + 1e-6 for w in r.words)
    assert r.confidence == pytest.approx(np.mean([w.confidence for w in r.words]))
    short = asr.transcribe(audio_dir / "speech.wav", nbest=3)[0]
    assert short.nbest is not None and 1 <= len(short.nbest) <= 3
    texts, scores = zip(*short.nbest, strict=True)
    assert (
        texts[0] == short.text
        and len(set(texts)) == len(texts)
        and list(scores) == sorted(scores, reverse=True)
    )
    assert all(
        w in TEXTS[0].split() + " ".join(TEXTS).split() for t in texts for w in t.split()
    )  # lexicon words
    row = r.to_dict()
    assert set(row) == {"path", "text", "duration", "words", "confidence", "nbest"}


def test_from_checkpoint_uses_the_stored_decoding(tmp_path: Path, audio_dir: Path) -> None:
    m = _module(1)
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}
    m.on_save_checkpoint(ckpt)
    ckpt["asr_decoding"]["lm_weight"], ckpt["asr_decoding"]["word_score"] = 0.5, 1.0
    torch.save(ckpt, tmp_path / "asr.ckpt")
    asr = Recognizer.from_checkpoint(tmp_path / "asr.ckpt")
    assert asr.decoder is not None and (asr.decoder.cfg.lm_weight, asr.decoder.cfg.word_score) == (0.5, 1.0)
    assert Recognizer.from_checkpoint(tmp_path / "asr.ckpt", decode="greedy").decoder is None
    sf.write(tmp_path / "a.wav", speechlike(1.0), 16000)
    assert asr.transcribe(tmp_path / "a.wav")[0].ok
