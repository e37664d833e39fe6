"""CTC decoding: greedy (best path) and beam search with a lexicon and a word n-gram language model.

Beam search has two backends with the same settings and the same ARPA file and lexicon:

- ``torch`` (default): :class:`~lstm_seq.audio.decoding.ctc_beam.CTCBeamSearch`, our batched lexicon-trie beam search
  with the LM read into tensors (:mod:`lstm_seq.audio.decoding.ngram`). It needs nothing beyond torch, so it installs
  on every Python torch supports, and runs on the CPU or on the emissions' GPU.
- ``flashlight``: torchaudio's ``ctc_decoder`` (flashlight-text's C++ beam search with KenLM), an optional
  extra (``pip install -e ".[flashlight]"``; its wheels stop at CPython 3.12).

benchmarks/asr_decoder.py compares them on the same saved emissions (WER and speed; benchmarks/RESULTS.md).
The LM and the lexicon are owned by :class:`~lstm_seq.audio.decoding.setup.DecodingSetup`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstm_seq.audio.decoding.ctc_beam import CTCBeamSearch
from lstm_seq.audio.decoding.lexicon import LexiconTrie
from lstm_seq.audio.decoding.ngram import NGramLM
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


class BeamSearchDecoder:
    """Beam search with an optional word n-gram LM over :class:`CharVocab` outputs.

    Built by :meth:`lstm_seq.audio.decoding.setup.DecodingSetup.decoder`, which owns the LM and the lexicon.

    Args:
        vocab: the model's vocabulary (blank at 0, space as the word boundary).
        cfg: beam settings.
        words: the lexicon (used when ``cfg.lexicon``).
        lm_path: an ARPA file, or None for no LM.
        work_dir: where ``lexicon.txt`` is written (the flashlight backend reads it).
    """

    def __init__(
        self,
        vocab: CharVocab,
        cfg: BeamConfig,
        words: Sequence[str],
        lm_path: str | os.PathLike[str] | None,
        work_dir: str | os.PathLike[str],
    ) -> None:
        self.vocab = vocab
        self.cfg = cfg
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        # flashlight tokens: blank "-" and word boundary "|" replace our blank and space
        self.tokens = [
            "-" if t == vocab.tokens[vocab.blank] else ("|" if t == " " else t) for t in vocab.tokens
        ]
        lexicon = None
        self.words = sorted(words) if cfg.lexicon else []
        if cfg.lexicon:
            # spellings without a trailing "|": the model emits no space after the last word, and
            # the spaces between words are taken as the silence token
            lexicon = work / "lexicon.txt"
            lexicon.write_text("".join(f"{w}\t{' '.join(w)}\n" for w in self.words))
        self.lm_path = Path(lm_path) if lm_path is not None else None
        self.lexicon_path = lexicon
        self._lm: NGramLM | None = None
        self._trie: LexiconTrie | None = None
        if cfg.backend == "torch":
            self._lm = NGramLM(self.lm_path) if self.lm_path is not None and cfg.lexicon else None
            if cfg.lexicon:
                self._trie = LexiconTrie(
                    self.words, [vocab.encode(w) for w in self.words], len(vocab), self._lm
                )
        self._decoder = self._build(cfg)

    def _build(self, cfg: BeamConfig) -> Any:
        if cfg.backend == "torch":
            return CTCBeamSearch(
                len(self.vocab), self.vocab.blank, self.vocab.encode(" ")[0] if " " in self.vocab.tokens else -1,
                list(self.vocab.tokens), self._trie, self._lm, beam_size=cfg.beam_size,
                beam_threshold=cfg.beam_threshold, lm_weight=cfg.lm_weight, word_score=cfg.word_score,
            )  # fmt: skip
        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError) as exc:  # flashlight-text missing (torchaudio raises RuntimeError)
            raise ImportError(
                f"decode.backend=flashlight needs flashlight-text (pip install -e '.[flashlight]'): {exc}"
            ) from exc

        return ctc_decoder(
            lexicon=str(self.lexicon_path) if self.lexicon_path else None,
            tokens=self.tokens,
            lm=str(self.lm_path) if self.lm_path else None,
            nbest=1,
            beam_size=cfg.beam_size,
            beam_threshold=cfg.beam_threshold,
            lm_weight=cfg.lm_weight,
            word_score=cfg.word_score,
            unk_word="<unk>",
            unk_score=cfg.unk_score,
            sil_score=0.0,
            log_add=False,
            blank_token="-",
            sil_token="|",
        )

    def with_weights(self, lm_weight: float, word_score: float) -> BeamSearchDecoder:
        """The same decoder (same LM and lexicon files, not re-estimated) with other LM weight and word
        score: what tuning on the validation set tries."""
        other = copy.copy(self)
        other.cfg = replace(self.cfg, lm_weight=float(lm_weight), word_score=float(word_score))
        other._decoder = self._build(other.cfg)
        return other

    def nbest(self, log_probs: Tensor, lengths: Tensor, n: int) -> list[list[tuple[str, float]]]:
        """Up to ``n`` distinct ``(text, score)`` per utterance, best first (score: acoustic + weighted LM + word
        scores, in nats). The flashlight backend gives the best one only."""
        if self.cfg.backend == "torch":
            return [[(h.text, h.score) for h in hyps] for hyps in self._decoder.search(log_probs, lengths, n)]
        emissions = log_probs.detach().float().cpu().contiguous()
        hyps = self._decoder(emissions, lengths.cpu().to(torch.int32))
        return [
            [(text, float(h[0].score))] if h else []
            for text, h in zip(self(log_probs, lengths), hyps, strict=True)
        ]

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """Decode (B, T, V) log-posteriors with (B,) valid lengths into B strings."""
        if self.cfg.backend == "torch":
            return self._decoder(log_probs, lengths)
        emissions = log_probs.detach().float().cpu().contiguous()
        hyps = self._decoder(emissions, lengths.cpu().to(torch.int32))
        out = []
        for nbest in hyps:
            if not nbest:
                out.append("")
                continue
            h = nbest[0]
            if self.cfg.lexicon:
                words = [w for w in h.words if w not in ("<unk>", "<s>", "</s>")]
            else:
                chars = "".join(self.tokens[i] for i in h.tokens.tolist() if i != self.vocab.blank)
                words = chars.replace("|", " ").split()
            out.append(" ".join(words))
        return out
