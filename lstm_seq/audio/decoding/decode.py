"""The decoding settings (:class:`BeamConfig` of one beam search, :class:`DecodeConfig` of a run's ``conf/decode``)
and greedy (best-path) decoding.

Beam search decoders are made by :func:`lstm_seq.audio.decoding.decoder.build_decoder`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from lstm_seq.audio.vocab import CharVocab
from lstm_seq.settings import at_least, check, like, one_of, positive

BACKENDS = ("torch", "flashlight")


def greedy_decode(log_probs: Tensor, lengths: Tensor, vocab: CharVocab) -> list[str]:
    """Best-path decoding: argmax per step, merge repeats, drop blanks.

    Args:
        log_probs: (B, T, V) scores (any monotone transform of the posteriors).
        lengths: (B,) valid steps.
    Returns:
        B strings with single spaces, stripped.
    """
    best = log_probs.argmax(-1).cpu()  # (B, T)
    out = []
    for b in range(best.shape[0]):
        seq = torch.unique_consecutive(best[b, : int(lengths[b])]).tolist()
        out.append(" ".join(vocab.decode(seq).split()))
    return out


@dataclass(frozen=True)
class BeamConfig:
    """Beam-search settings of one decoder (the weights fixed)."""

    beam_size: int = positive(50)
    lm_order: int = at_least(0, 3)  # 0 = no language model
    lm_weight: float = 1.0
    word_score: float = 0.0  # insertion bonus per word
    lexicon: bool = True  # restrict output to words seen in training (False: free spelling)
    beam_threshold: float = positive(25.0)
    unk_score: float = float("-inf")  # flashlight only: score of a spelling outside the lexicon
    backend: str = one_of("torch", *BACKENDS)  # or "flashlight" (the optional extra)

    def __post_init__(self) -> None:
        check(self, "decode.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecodeConfig:
    """How a run decodes (``conf/decode``): greedy, or beam search whose LM weight and word score are either
    fixed or tuned on the validation set after training. Greedy results are always reported too."""

    beam: bool = True  # False: greedy (best-path) decoding only
    beam_size: int = like(BeamConfig, "beam_size")
    lm_order: int = like(
        BeamConfig, "lm_order"
    )  # word n-gram order of the LM from the transcripts; 0 = no LM
    lm_weight: float | None = None  # None: tuned on validation after training (then stored in the checkpoint)
    word_score: float | None = None  # insertion bonus per word; None: tuned like lm_weight
    tune_lm_weights: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # grid of the lm_weight search
    tune_word_scores: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0)  # grid of the word_score search
    lexicon: bool = like(BeamConfig, "lexicon")  # only words seen in training; False = free spelling
    beam_threshold: float = like(BeamConfig, "beam_threshold")
    # torch (ours) | flashlight (flashlight-text's C++ decoder, the optional extra: pip install -e ".[flashlight]")
    backend: str = like(BeamConfig, "backend")
    lm_path: str | None = (
        None  # an ARPA LM of your own (e.g. a LibriSpeech 3-gram); None: from the transcripts
    )

    def __post_init__(self) -> None:
        check(self, "decode.")
