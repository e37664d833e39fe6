"""Word and character error rates with the standard definitions.

WER = (substitutions + deletions + insertions) / reference words, summed over the corpus (not an
average of per-utterance rates); CER the same over characters (spaces included). The edit distance is
rapidfuzz's C++ Levenshtein (on strings for CER, on word lists for WER). Cross-checked against a plain
dynamic-programming distance and ``jiwer`` in tests/audio/test_vocab_wer.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (unit costs) between two strings or sequences of hashable items."""
    return Levenshtein.distance(ref, hyp)


@dataclass(frozen=True)
class ErrorRate:
    """Corpus-level error counts; ``rate`` = errors / reference length (inf for an empty reference
    with errors, 0 for both empty)."""

    errors: int
    ref_len: int

    @property
    def rate(self) -> float:
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len


def word_errors(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRate:
    """Word-level error counts over whitespace-split words."""
    _check(refs, hyps)
    errors = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    return ErrorRate(errors, sum(len(r.split()) for r in refs))


def char_errors(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRate:
    """Character-level error counts (spaces count as characters; leading/trailing ones are stripped)."""
    _check(refs, hyps)
    errors = sum(edit_distance(r.strip(), h.strip()) for r, h in zip(refs, hyps, strict=True))
    return ErrorRate(errors, sum(len(r.strip()) for r in refs))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate."""
    return word_errors(refs, hyps).rate


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus character error rate."""
    return char_errors(refs, hyps).rate


def _check(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("pass lists of sentences, not a single string")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
