"""CTC forced alignment of a transcript to log-posteriors: word start/end times and confidences.

Whatever decoder produced the text (greedy, beam + LM), the Viterbi path of that text through the CTC
lattice (blank, c₁, blank, c₂, …, blank; a state may repeat, skip a blank between different characters)
gives each character its frames. A word spans its first character's first frame to its last character's
last frame; its confidence is the geometric mean of the aligned frames' posteriors (exp of their mean log
posterior), so 1.0 means the model was certain of every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class WordSpan:
    """A word and where the model said it.

    Attributes:
        word: the word.
        start, end: first and one-past-last output frame (multiply by the frame period for seconds).
        confidence: exp(mean log posterior of its aligned frames), in (0, 1].
    """

    word: str
    start: int
    end: int
    confidence: float


def ctc_align(log_probs: Tensor, targets: list[int], blank: int = 0) -> list[tuple[int, int, float]]:
    """The Viterbi alignment of ``targets`` to ``log_probs``.

    Args:
        log_probs: (T, V) log-posteriors of one utterance (valid frames only).
        targets: L token ids (no blanks).
    Returns:
        for each target token, ``(first frame, one-past-last frame, sum of its frames' log posteriors)``;
        [] when the text cannot fit (T too short for it).
    """
    lp = log_probs.detach().float().cpu()
    T = lp.shape[0]
    L = len(targets)
    if L == 0 or T == 0:
        return []
    states = [blank] * (2 * L + 1)
    states[1::2] = targets
    S = len(states)
    sym = torch.tensor(states)
    emit = lp[:, sym]  # (T, S)
    # a state may come from itself, the previous one, or (a character) two back when that is a different char
    skip = torch.zeros(S, dtype=torch.bool)
    for s in range(3, S, 2):
        skip[s] = states[s] != states[s - 2]
    neg = torch.tensor(float("-inf"))
    score = torch.full((S,), float("-inf"))
    score[0], score[1] = emit[0, 0], emit[0, 1]
    back = torch.zeros(T, S, dtype=torch.int64)
    idx = torch.arange(S)
    for t in range(1, T):
        stay = score
        prev = torch.cat([neg.view(1), score[:-1]])
        prev2 = torch.where(skip, torch.cat([neg.view(1).expand(2), score[:-2]]), neg)
        cand = torch.stack([stay, prev, prev2])  # (3, S)
        best, arg = cand.max(0)
        back[t] = idx - arg
        score = best + emit[t]
    end = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    if score[end] == float("-inf"):
        return []
    path = [end]
    for t in range(T - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path.reverse()  # state per frame
    spans: list[list[float]] = [[-1, -1, 0.0] for _ in range(L)]
    for t, s in enumerate(path):
        if s % 2 == 1:
            span = spans[s // 2]
            if span[0] < 0:
                span[0] = t
            span[1] = t + 1
            span[2] += float(emit[t, s])
    return [(int(a), int(b), c) for a, b, c in spans]


def word_spans(
    log_probs: Tensor, text: str, encode: Callable[[str], list[int]], blank: int = 0
) -> list[WordSpan]:
    """The words of ``text`` with their frames and confidences, aligned to ``log_probs`` (T, V).

    ``encode`` gives the token id of each character of a string (e.g. :meth:`CharVocab.encode`); [] when ``text`` is empty or cannot be aligned."""
    words = text.split()
    if not words:
        return []
    chars = " ".join(words)
    ids = encode(chars)
    aligned = ctc_align(log_probs, ids, blank)
    if not aligned:
        return []
    out, i = [], 0
    for w in words:
        part = aligned[i : i + len(w)]
        frames = sum(b - a for a, b, _ in part)
        conf = float(torch.tensor(sum(c for _, _, c in part) / max(frames, 1)).exp())
        out.append(WordSpan(w, part[0][0], part[-1][1], conf))
        i += len(w) + 1  # the space
    return out
