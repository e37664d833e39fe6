"""Word vocabulary for captions: coco-style tokenisation (:func:`lstm_seq.text.tokenize`), a
minimum-frequency threshold and the four special tokens ``<pad>`` (0), ``<start>`` (1), ``<end>`` (2),
``<unk>`` (3).

The vocabulary is saved inside every checkpoint (``to_dict`` / ``from_dict``), never as a separate file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from lstm_seq.text import tokenize

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)


class Vocabulary:
    """Maps words to ids and back.

    Args:
        words: the non-special words, in id order (ids start after the four specials).
    """

    def __init__(self, words: Sequence[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.start_id, self.end_id, self.unk_id = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(cls, captions: Iterable[str], min_freq: int = 1) -> Vocabulary:
        """Build from training captions; words seen fewer than ``min_freq`` times map to ``<unk>``.
        Ids are assigned by descending frequency, ties alphabetically (deterministic)."""
        if min_freq < 1:
            raise ValueError(f"vocab min_freq must be >= 1, got {min_freq}")
        counts = Counter(tok for cap in captions for tok in tokenize(cap))
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if not words:
            raise ValueError(f"no word occurs at least min_freq={min_freq} times in the training captions")
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, caption: str, max_len: int | None = None) -> list[int]:
        """``<start> w1 … wn <end>`` ids; the words are cut to ``max_len`` when given."""
        ids = [self.stoi.get(t, self.unk_id) for t in tokenize(caption)]
        if max_len is not None:
            ids = ids[:max_len]
        return [self.start_id, *ids, self.end_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<end>``; ``<start>`` and ``<pad>`` are skipped."""
        words: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.start_id, self.pad_id):
                continue
            words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return " ".join(words)

    def decode_batch(self, ids: torch.Tensor) -> list[str]:
        """Decode a (B, T) tensor of ids row by row."""
        return [self.decode(row.tolist()) for row in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"itos": list(self.itos)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        itos = list(state["itos"])
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary in checkpoint does not start with {SPECIALS}: {itos[:4]}")
        return cls(itos[4:])
