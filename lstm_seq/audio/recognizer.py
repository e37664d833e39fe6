"""Use a trained speech recogniser from Python: :class:`Recognizer`.

::

    from lstm_seq.audio import Recognizer

    asr = Recognizer.from_checkpoint("outputs/…/checkpoints/final.ckpt")         # beam + LM, tuned weights
    for r in asr.transcribe(["a.wav", "clips/", (samples, 44100)], batch_size=16, word_timestamps=True):
        print(r.path, r.text if r.ok else r.error, r.confidence, r.words)

Items are audio files, folders (every audio file under them, sorted; hidden files and folders left out), or
waveforms: a numpy array or torch tensor (mono (N,), channels-first (C, N) or channels-last (N, C) as
``soundfile.read`` returns; float, or int8/int16/int32/uint8 PCM, scaled: :func:`~lstm_seq.audio.data.io.as_mono`)
with its sample rate, as ``(wave, rate)`` or with ``sample_rate=``. A tuple that is not ``(wave, rate)`` is a list of
items.
An item that cannot be read gets a result with ``error`` set; the call never fails for one bad item.

Utterances of every item are batched together (sorted by length, ``batch_size`` at a time) and decoded by the
checkpoint's own :class:`~lstm_seq.audio.decoding.setup.DecodingSetup` — the same beam search, LM and tuned
weights as ``pipelines.asr.test``, made by :func:`~lstm_seq.audio.decoding.decoder.build_decoder` — or greedily
(``decode="greedy"``). A clip longer than ``chunk_s`` is cut at its
quietest frames near each chunk boundary (:func:`chunk_bounds`) and its chunks'
texts joined. Word times come from a CTC forced alignment of the decoded text
(:mod:`lstm_seq.audio.decoding.align`), which also gives each word's confidence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from lstm_seq.audio.data.io import AudioReadError, as_mono, find_audio_files, is_silent, load_audio, resample
from lstm_seq.audio.decoding.align import word_spans
from lstm_seq.audio.decoding.decode import BeamConfig, greedy_decode
from lstm_seq.audio.decoding.decoder import BeamSearchDecoder
from lstm_seq.audio.module import ASRModule

log = logging.getLogger(__name__)

CHUNK_S = 4.0  # longest piece decoded at once (s; transcribe.chunk_s): the default model, trained on 2-3 s
# utterances, has 25.5 % WER on 10-s clips decoded whole and 7.6 % cut into 4-s pieces (benchmarks/RESULTS.md)

Wave = Union[np.ndarray, torch.Tensor]  # noqa: UP007 (a runtime alias)
Item = Union[str, os.PathLike, Wave, tuple]  # noqa: UP007


def chunk_bounds(wave: np.ndarray, chunk: int, search: int, hop: int) -> list[tuple[int, int]]:
    """Split ``wave`` (N,) into [start, end) sample ranges of at most ``chunk`` samples, each cut
    at the lowest-energy ``hop``-sample frame within the last ``search`` samples of the chunk;
    starts are multiples of ``hop`` so chunk features align with whole-clip frames."""
    n = len(wave)
    bounds: list[tuple[int, int]] = []
    start = 0
    while n - start > chunk:
        lo = start + max(hop, chunk - search)
        hi = start + chunk
        lo, hi = lo - lo % hop, hi - hi % hop
        frames = wave[lo:hi].reshape(-1, hop) if hi > lo else np.zeros((0, hop), wave.dtype)
        cut = lo + int(np.argmin((frames**2).sum(1))) * hop if len(frames) else hi
        cut = max(cut, start + hop)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def _is_wave_and_rate(item: object) -> bool:
    """``(waveform, sample_rate)``: an array or tensor and a number (a tuple of paths is a list of items)."""
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], (np.ndarray, torch.Tensor))
        and isinstance(item[1], (int, float, np.integer, np.floating))
        and not isinstance(item[1], bool)
    )


@dataclass(frozen=True)
class Word:
    """A recognised word: ``start``/``end`` in seconds from the start of the item, ``confidence`` in (0, 1]."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass
class Transcript:
    """The result for one item.

    Attributes:
        text: the transcript ("" for silence, or when ``error`` is set).
        path: the file, or ``"<array N>"`` for the N-th waveform item.
        duration: seconds of audio.
        words: with ``word_timestamps=True``: each word's times and confidence.
        confidence: with ``word_timestamps=True``: the mean of the word confidences (1.0 for no words).
        nbest: with ``nbest > 1``: up to that many ``(text, score)`` from beam search, best first (an item cut into
            chunks gives its joined best text only).
        error: why the item could not be transcribed (None: it was).
    """

    text: str = ""
    path: str = ""
    duration: float = 0.0
    words: list[Word] | None = None
    confidence: float | None = None
    nbest: list[tuple[str, float]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON row of ``transcripts.jsonl``: ``{"path", "text", "duration"}`` (+ what was asked for) or
        ``{"path", "error"}``."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        row: dict[str, Any] = {"path": self.path, "text": self.text, "duration": round(self.duration, 4)}
        if self.words is not None:
            row["words"] = [
                {
                    "word": w.word,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "confidence": round(w.confidence, 4),
                }
                for w in self.words
            ]
            row["confidence"] = round(self.confidence, 4) if self.confidence is not None else None
        if self.nbest is not None:
            row["nbest"] = [{"text": t, "score": round(s, 4)} for t, s in self.nbest]
        return row


@dataclass
class _Piece:
    item: int
    offset: int  # first sample in the item
    wave: np.ndarray
    text: str = ""
    nbest: list[tuple[str, float]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


class Recognizer:
    """A trained recogniser with its decoder, ready to transcribe.

    Args:
        module: the :class:`ASRModule` (its :attr:`~ASRModule.decoding` holds the LM, lexicon, tuned weights).
        decode: ``"beam"`` (the default: beam search as configured at training, ``conf/decode/beam_lm.yaml``),
            ``"greedy"``, a mapping of ``conf/decode`` keys (e.g. ``{"beam": True, "beam_size": 100}``), or a
            :class:`BeamConfig`.
        device: where the model (and beam search) runs.
        chunk_s: longest piece decoded at once, in seconds.
    """

    def __init__(
        self,
        module: ASRModule,
        decode: str | Mapping[str, Any] | BeamConfig = "beam",
        device: str | torch.device = "cpu",
        chunk_s: float = CHUNK_S,
    ) -> None:
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        self.vocab = module.vocab
        self.sample_rate = module.feature_cfg.sample_rate
        self.chunk = int(chunk_s * self.sample_rate)
        self.decoder = self._decoder(decode)

    def _decoder(self, decode: str | Mapping[str, Any] | BeamConfig) -> BeamSearchDecoder | None:
        if decode == "greedy":
            return None
        if decode == "beam":
            cfg = self.module.decoding.beam_config({"beam": True})
        elif isinstance(decode, BeamConfig):
            cfg = decode
        elif isinstance(decode, Mapping):
            cfg = self.module.decoding.beam_config(dict(decode))
        else:
            raise ValueError(
                f"decode must be 'beam', 'greedy', a conf/decode mapping or a BeamConfig, got {decode!r}"
            )
        if cfg is None:
            return None
        return self.module.decoding.decoder(self.vocab, cfg)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        decode: str | Mapping[str, Any] | BeamConfig = "beam",
        chunk_s: float = CHUNK_S,
    ) -> Recognizer:
        """Load ``path`` (read with ``weights_only=True``; a foreign or broken file raises
        :class:`~lstm_seq.training.checkpoint_io.CheckpointError` naming it)."""
        return cls(ASRModule.load(path, map_location="cpu"), decode=decode, device=device, chunk_s=chunk_s)

    def chunk_bounds(self, wave: np.ndarray) -> list[tuple[int, int]]:
        """Where a clip (N,) is cut: pieces of at most ``chunk_s``, each cut at its quietest frame in the second
        half of the chunk (benchmarks/asr_chunking.py: a window of the last quarter missed most pauses)."""
        return chunk_bounds(wave, self.chunk, self.chunk // 2, self.module.feature_cfg.hop_length)

    # ------------------------------------------------------------------------------------------ serving
    def export(self, out_dir: str | os.PathLike[str], **options: Any) -> Any:
        """ONNX (and ``torch.export``) files of the acoustic model with their metadata:
        :func:`lstm_seq.audio.export.export_acoustic_model` (``options``: ``opset``, ``waveform``,
        ``torch_export``)."""
        from lstm_seq.audio.export import export_acoustic_model

        return export_acoustic_model(self.module, out_dir, **options)

    def stream(self) -> Any:
        """A :class:`~lstm_seq.audio.streaming.StreamingSession` over this model (greedy; a unidirectional model
        with global or no CMVN): ``push(chunk) -> partial text``, ``finish() -> final text``."""
        from lstm_seq.audio.streaming import StreamingSession

        return StreamingSession(self.module)

    # ------------------------------------------------------------------------------------------ inputs
    def _items(self, items: Item | Iterable[Item], sample_rate: int | None) -> Iterator[tuple[str, Any]]:
        """(label, path or (wave, rate)) for every input; folders expand to their audio files."""
        if isinstance(items, (str, os.PathLike, np.ndarray, torch.Tensor)) or _is_wave_and_rate(items):
            items = [items]
        elif not isinstance(items, Iterable):
            raise TypeError(
                "transcribe() takes a path, a folder, a waveform, (waveform, sample_rate) or a list of them, "
                f"got {type(items).__name__}"
            )
        for n, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                p = Path(item)
                if p.is_dir():
                    for f in find_audio_files(p):
                        yield str(f), f
                else:
                    yield str(p), p
            elif _is_wave_and_rate(item):
                yield f"<array {n}>", (item[0], int(item[1]))
            elif isinstance(item, (np.ndarray, torch.Tensor)):
                yield f"<array {n}>", (item, sample_rate)
            else:
                what = "(waveform, sample_rate)" if isinstance(item, tuple) else "path, folder or waveform"
                yield f"<item {n}>", TypeError(f"not a {what}: {type(item).__name__} {item!r:.60}")

    def _load(self, source: Any) -> np.ndarray:
        if isinstance(source, Exception):
            raise source
        if isinstance(source, Path):
            return load_audio(source, self.sample_rate)
        wave, rate = source
        if rate is None:
            raise ValueError("a waveform item needs its sample rate: pass (wave, rate) or sample_rate=")
        return resample(as_mono(wave), int(rate), self.sample_rate)

    # ------------------------------------------------------------------------------------------ decoding
    def transcribe(
        self,
        items: Item | Iterable[Item],
        batch_size: int = 16,
        sample_rate: int | None = None,
        word_timestamps: bool = False,
        nbest: int = 1,
    ) -> list[Transcript]:
        """Transcribe every item (see the module docstring); one :class:`Transcript` per file or waveform, in
        input order (a folder's files sorted)."""
        return list(self.iter_transcribe(items, batch_size, sample_rate, word_timestamps, nbest))

    def iter_transcribe(
        self,
        items: Item | Iterable[Item],
        batch_size: int = 16,
        sample_rate: int | None = None,
        word_timestamps: bool = False,
        nbest: int = 1,
        group: int = 4,
    ) -> Iterator[Transcript]:
        """:meth:`transcribe` as a generator: results come ``group × batch_size`` items at a time, so a large
        folder is never held in memory at once and each finished result can be written immediately."""
        if batch_size < 1 or nbest < 1:
            raise ValueError(f"batch_size and nbest must be ≥ 1, got {batch_size} and {nbest}")
        pending: list[tuple[str, Any]] = []
        for entry in self._items(items, sample_rate):
            pending.append(entry)
            if len(pending) == group * batch_size:
                yield from self._run(pending, batch_size, word_timestamps, nbest)
                pending = []
        if pending:
            yield from self._run(pending, batch_size, word_timestamps, nbest)

    def _run(
        self, entries: Sequence[tuple[str, Any]], batch_size: int, word_timestamps: bool, nbest: int
    ) -> list[Transcript]:
        results: list[Transcript] = []
        pieces: list[_Piece] = []
        for i, (label, source) in enumerate(entries):
            try:
                wave = self._load(source)
            except (AudioReadError, ValueError, TypeError, OSError) as exc:
                msg = str(exc) if label in str(exc) else f"{label}: {exc}"
                results.append(Transcript(path=label, error=msg))
                continue
            results.append(Transcript(path=label, duration=len(wave) / self.sample_rate))
            if is_silent(wave) or len(wave) < self.module.feature_cfg.n_fft:
                continue  # silence or too short for one frame: ""
            bounds = self.chunk_bounds(wave)
            pieces += [_Piece(i, s, wave[s:e]) for s, e in bounds]
        order = sorted(range(len(pieces)), key=lambda j: len(pieces[j].wave))
        for k in range(0, len(order), batch_size):
            self._decode([pieces[j] for j in order[k : k + batch_size]], word_timestamps, nbest)
        by_item: dict[int, list[_Piece]] = {}
        for piece in pieces:
            by_item.setdefault(piece.item, []).append(piece)
        for i, parts in by_item.items():
            r = results[i]
            r.text = " ".join(p.text for p in parts if p.text)
            if nbest > 1:
                r.nbest = (
                    parts[0].nbest
                    if len(parts) == 1
                    else [(r.text, sum(p.nbest[0][1] for p in parts if p.nbest))]
                )
            if word_timestamps:
                r.words = [w for p in parts for w in p.words]
        for r in results:
            if word_timestamps and r.ok:
                r.words = r.words or []
                r.confidence = float(np.mean([w.confidence for w in r.words])) if r.words else 1.0
            if nbest > 1 and r.ok and r.nbest is None:
                r.nbest = [("", 0.0)]
        return results

    @torch.no_grad()
    def _decode(self, batch: list[_Piece], word_timestamps: bool, nbest: int) -> None:
        lengths = torch.tensor([len(p.wave) for p in batch], dtype=torch.long)
        wave = torch.zeros(len(batch), int(lengths.max()))
        for j, p in enumerate(batch):
            wave[j, : len(p.wave)] = torch.from_numpy(p.wave)
        log_probs, out_lengths = self.module(wave.to(self.device), lengths.to(self.device))
        if self.decoder is None:
            texts = greedy_decode(log_probs, out_lengths, self.vocab)
            lists = [[(t, float("nan"))] for t in texts]
        elif nbest > 1:
            lists = self.decoder.nbest(log_probs, out_lengths, nbest)
            texts = [hyps[0][0] if hyps else "" for hyps in lists]
        else:
            texts = self.decoder(log_probs, out_lengths)
            lists = [[(t, float("nan"))] for t in texts]
        frame_s = self.frame_seconds
        for j, p in enumerate(batch):
            p.text, p.nbest = texts[j], lists[j]
            if word_timestamps and p.text:
                lp = log_probs[j, : int(out_lengths[j])]
                t0 = p.offset / self.sample_rate
                p.words = [
                    Word(s.word, t0 + s.start * frame_s, t0 + s.end * frame_s, s.confidence)
                    for s in word_spans(lp, p.text, self.vocab.encode, self.vocab.blank)
                ]

    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame: the feature hop times the model's subsampling."""
        return self.module.feature_cfg.hop_length * self.module.model_cfg.subsample / self.sample_rate
