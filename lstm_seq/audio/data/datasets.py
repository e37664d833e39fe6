"""Speech datasets over manifests: filtering with counted reasons, and batch collation.

Every utterance that cannot be used is skipped with its reason counted (``SpeechDataset.skipped``)
and reported in the log; one bad file never stops a run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lstm_seq.audio.data.augment import Augmenter
from lstm_seq.audio.data.io import AudioReadError, audio_info, is_silent, load_audio
from lstm_seq.audio.data.manifest import Utterance
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.training.sampler import SeededIndex

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """A padded batch.

    Attributes:
        wave: (B, N) float32 waveforms, zero-padded.
        wave_lengths: (B,) samples.
        targets: (B, L) token ids, zero-padded.
        target_lengths: (B,).
        texts: normalised reference transcripts.
        paths: audio files.
        warp: (B,) per-utterance VTLP warp factors for the front end (training augmentation), or None.
    """

    wave: Tensor
    wave_lengths: Tensor
    targets: Tensor
    target_lengths: Tensor
    texts: list[str]
    paths: list[str]
    warp: Tensor | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def to(self, device: torch.device | str) -> Batch:
        """The tensors on ``device``; copies from pinned memory do not wait for the GPU (non_blocking)."""
        return Batch(
            self.wave.to(device, non_blocking=True),
            self.wave_lengths.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.target_lengths.to(device, non_blocking=True),
            self.texts,
            self.paths,
            self.warp.to(device, non_blocking=True) if self.warp is not None else None,
        )


class SpeechDataset(Dataset):
    """Utterances of a manifest, filtered and normalised.

    Skipped (and counted in :attr:`skipped` by reason): unreadable/missing/empty/zero-length files
    (header checked up front when ``check_files``), utterances longer than ``max_duration``,
    transcripts empty after normalisation; at load time, corrupt or silent audio (the item is
    ``None`` and :func:`collate` drops it). Characters outside the vocabulary are normalised
    away and counted in :attr:`n_oov_chars` / :attr:`n_oov_utts`.

    Args:
        utterances: manifest entries.
        vocab: the character vocabulary.
        sample_rate: rate the audio is resampled to.
        max_duration: longest utterance kept, in seconds (None = no limit).
        min_duration: shortest utterance kept, in seconds.
        check_files: read every file's header now (fast; catches missing/empty/non-audio files).
        skip_silent: drop digitally silent clips at load time.
        name: shown in log messages.
        augment: waveform augmentation (training only); its draws are seeded by the index's
            :class:`~lstm_seq.training.sampler.SeededIndex` seed, i.e. by (seed, epoch, index), else by the index.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        vocab: CharVocab,
        sample_rate: int = 16000,
        max_duration: float | None = 20.0,
        min_duration: float = 0.1,
        check_files: bool = True,
        skip_silent: bool = True,
        name: str = "data",
        augment: Augmenter | None = None,
    ) -> None:
        self.vocab = vocab
        self.augment = augment
        self.sample_rate = sample_rate
        self.skip_silent = skip_silent
        self.name = name
        self.skipped: Counter[str] = Counter()
        self.n_oov_chars = 0
        self.n_oov_utts = 0
        self.items: list[tuple[str, float, str]] = []
        examples: dict[str, str] = {}
        for u in utterances:
            reason = None
            duration = u.duration
            if check_files:
                try:
                    duration = audio_info(u.audio_filepath).duration
                except AudioReadError as exc:
                    reason = "unreadable audio"
                    examples.setdefault(reason, str(exc))
            if reason is None and max_duration is not None and duration > max_duration:
                reason = f"longer than max_duration={max_duration}s"
                examples.setdefault(reason, u.audio_filepath)
            if reason is None and duration < min_duration:
                reason = f"shorter than min_duration={min_duration}s"
                examples.setdefault(reason, u.audio_filepath)
            norm = vocab.normalize(u.text)
            if reason is None and not norm.text:
                reason = "empty transcript"
                examples.setdefault(reason, u.audio_filepath)
            if reason is not None:
                self.skipped[reason] += 1
                continue
            if norm.n_oov:
                self.n_oov_chars += norm.n_oov
                self.n_oov_utts += 1
            self.items.append((u.audio_filepath, duration, norm.text))
        for reason, n in self.skipped.items():
            log.warning("%s: skipped %d utterance(s): %s (e.g. %s)", name, n, reason, examples[reason])
        if self.n_oov_chars:
            log.warning(
                "%s: %d character(s) outside the vocabulary in %d transcript(s) were normalised away",
                name,
                self.n_oov_chars,
                self.n_oov_utts,
            )

    @property
    def durations(self) -> list[float]:
        return [d for _, d, _ in self.items]

    @property
    def texts(self) -> list[str]:
        return [t for _, _, t in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        path, _, text = self.items[i]
        try:
            wave = load_audio(path, self.sample_rate)
        except AudioReadError as exc:
            log.warning("%s: skipping %s", self.name, exc)
            self.skipped["unreadable audio"] += 1
            return None
        if self.skip_silent and is_silent(wave):
            log.warning("%s: skipping silent audio %s", self.name, path)
            self.skipped["silent audio"] += 1
            return None
        item: dict[str, Any] = {
            "tokens": torch.tensor(self.vocab.encode(text), dtype=torch.long),
            "text": text,
            "path": path,
        }
        if self.augment is not None:
            rng = np.random.default_rng(i.seed if isinstance(i, SeededIndex) else int(i))
            wave, item["warp"] = self.augment(wave, rng, others=self._other)
        item["wave"] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        return item

    def _other(self, rng: np.random.Generator) -> np.ndarray | None:
        """A random utterance of this dataset (babble for the augmenter); None if it cannot be read."""
        path = self.items[int(rng.integers(len(self.items)))][0]
        try:
            return load_audio(path, self.sample_rate)
        except AudioReadError:
            return None

    def summary(self) -> dict[str, int]:
        """Counts for the log / metrics: kept, skipped by reason, out-of-vocabulary characters."""
        out = {"kept": len(self.items), "oov_chars": self.n_oov_chars, "oov_utterances": self.n_oov_utts}
        out.update({f"skipped: {k}": v for k, v in self.skipped.items()})
        return out


def collate(items: Sequence[dict[str, Any] | None]) -> Batch | None:
    """Pad a list of dataset items into a :class:`Batch`; ``None`` items are dropped (``None`` if
    nothing is left)."""
    good = [it for it in items if it is not None]
    if not good:
        return None
    wave_lengths = torch.tensor([len(it["wave"]) for it in good], dtype=torch.long)
    target_lengths = torch.tensor([len(it["tokens"]) for it in good], dtype=torch.long)
    wave = torch.zeros(len(good), int(wave_lengths.max()))
    targets = torch.zeros(len(good), max(1, int(target_lengths.max())), dtype=torch.long)
    for i, it in enumerate(good):
        wave[i, : len(it["wave"])] = it["wave"]
        targets[i, : len(it["tokens"])] = it["tokens"]
    warp = None
    if any("warp" in it for it in good):
        warp = torch.tensor([float(it.get("warp", 1.0)) for it in good], dtype=torch.float32)
    return Batch(
        wave,
        wave_lengths,
        targets,
        target_lengths,
        [it["text"] for it in good],
        [it["path"] for it in good],
        warp,
    )
