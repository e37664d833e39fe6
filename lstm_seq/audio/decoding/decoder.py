"""The one place a CTC beam-search decoder is made: :func:`build_decoder`.

Its shape is torchaudio's ``ctc_decoder(lexicon, tokens, lm, ...)``: the model's tokens (a :class:`CharVocab`),
the settings (:class:`BeamConfig`), the words beam search may spell and the word n-gram LM, either an ARPA file
or an :class:`NGramTable` in memory (an estimate from transcripts, :func:`lstm_seq.audio.decoding.lm.estimate`).
Two backends take the same arguments:

- ``torch`` (default): :class:`~lstm_seq.audio.decoding.ctc_beam.CTCBeamSearch`, our batched lexicon-trie beam
  search with the LM in tensors (:class:`NGramLM`, built from the table itself: no file is written). It needs
  nothing beyond torch, so it installs on every Python torch supports, and runs on the CPU or on the emissions'
  GPU.
- ``flashlight``: torchaudio's ``ctc_decoder`` (flashlight-text's C++ beam search with KenLM), an optional extra
  (``pip install -e ".[flashlight]"``; its wheels stop at CPython 3.12). It reads files: ``lexicon.txt`` and,
  for an LM in memory, ``lm.arpa`` are written to ``work_dir`` for it.

benchmarks/asr_decoder.py compares them on the same saved emissions (WER and speed; benchmarks/RESULTS.md).
Which LM and lexicon a trained model uses is :class:`~lstm_seq.audio.decoding.setup.DecodingSetup`'s part.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstm_seq.audio.decoding.ctc_beam import CTCBeamSearch
from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.lexicon import LexiconTrie
from lstm_seq.audio.decoding.ngram import NGramLM, NGramTable
from lstm_seq.audio.vocab import CharVocab

LMSource = str | os.PathLike[str] | NGramTable  # an ARPA file, or the model's numbers in memory


def build_decoder(
    vocab: CharVocab,
    cfg: BeamConfig,
    *,
    lexicon: Sequence[str] | None = None,
    lm: LMSource | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> BeamSearchDecoder:
    """A beam-search decoder over ``vocab``'s outputs.

    Args:
        vocab: the model's vocabulary (blank at 0, space as the word boundary).
        cfg: beam size, threshold, LM weight, word score, backend; ``cfg.lexicon=False`` spells freely
            (``lexicon`` and ``lm`` are then not used by the torch backend).
        lexicon: the words beam search may spell (needed when ``cfg.lexicon``).
        lm: an ARPA file, an :class:`NGramTable`, or None for no LM.
        work_dir: the flashlight backend's folder for ``lexicon.txt`` / ``lm.arpa`` (default: a temporary
            folder that lives as long as the decoder); the torch backend writes nothing.
    Raises:
        ValueError: ``cfg.lexicon`` without words; a bad ARPA file (naming its line).
        ImportError: the flashlight backend without flashlight-text.
    """
    if cfg.lexicon and not lexicon:
        raise ValueError("decode.lexicon=true: beam search needs the words it may spell (lexicon=)")
    return BeamSearchDecoder(vocab, cfg, sorted(lexicon or ()) if cfg.lexicon else [], lm, work_dir)


def flashlight_tokens(vocab: CharVocab) -> list[str]:
    """flashlight's token list: blank "-" and word boundary "|" in place of ours."""
    return ["-" if t == vocab.tokens[vocab.blank] else ("|" if t == " " else t) for t in vocab.tokens]


class BeamSearchDecoder:
    """A beam search with its LM, lexicon and settings fixed; made by :func:`build_decoder` (the arguments are
    its own). The LM and lexicon are built here once; :meth:`with_weights` re-uses them."""

    def __init__(
        self,
        vocab: CharVocab,
        cfg: BeamConfig,
        words: Sequence[str],
        lm: LMSource | None,
        work_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.vocab, self.cfg = vocab, cfg
        self._keep: tempfile.TemporaryDirectory[str] | None = None
        if cfg.backend == "flashlight":
            self._make: Callable[[BeamConfig], Any] = self._flashlight(words, lm, work_dir)
        else:
            model = None
            if lm is not None and cfg.lexicon:
                model = NGramLM(lm) if isinstance(lm, NGramTable) else NGramLM.from_arpa(lm)
            spell = [vocab.encode(w) for w in words]
            trie = LexiconTrie(words, spell, len(vocab), model) if cfg.lexicon else None
            space = vocab.encode(" ")[0] if " " in vocab.tokens else -1
            self._make = lambda c: CTCBeamSearch(
                len(vocab), vocab.blank, space, list(vocab.tokens), trie, model, beam_size=c.beam_size,
                beam_threshold=c.beam_threshold, lm_weight=c.lm_weight, word_score=c.word_score,
            )  # fmt: skip
        self._search = self._make(cfg)

    def _flashlight(
        self, words: Sequence[str], lm: LMSource | None, work_dir: str | os.PathLike[str] | None
    ) -> Callable[[BeamConfig], Any]:
        """torchaudio's ``ctc_decoder`` for a :class:`BeamConfig`, over files: ``lexicon.txt`` and (for a table)
        ``lm.arpa`` written to ``work_dir`` or a temporary folder."""
        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError) as exc:  # flashlight-text missing (torchaudio raises RuntimeError)
            raise ImportError(
                f"decode.backend=flashlight needs flashlight-text (pip install -e '.[flashlight]'): {exc}"
            ) from exc
        if work_dir is None:
            self._keep = tempfile.TemporaryDirectory(prefix="lstm_seq_lm_")
        work = Path(self._keep.name if self._keep is not None else work_dir)  # type: ignore[arg-type]
        work.mkdir(parents=True, exist_ok=True)
        lexicon_file = None
        if self.cfg.lexicon:
            # spellings without a trailing "|": the model emits no space after the last word, and the spaces
            # between words are taken as the silence token
            lexicon_file = work / "lexicon.txt"
            lexicon_file.write_text("".join(f"{w}\t{' '.join(w)}\n" for w in words))
        lm_file = Path(lm) if lm is not None and not isinstance(lm, NGramTable) else None
        if isinstance(lm, NGramTable):
            lm_file = work / "lm.arpa"
            lm_file.write_text(lm.to_arpa())
        tokens = flashlight_tokens(self.vocab)
        return lambda c: ctc_decoder(
            lexicon=str(lexicon_file) if lexicon_file else None, tokens=tokens,
            lm=str(lm_file) if lm_file else None, nbest=1, beam_size=c.beam_size, beam_threshold=c.beam_threshold,
            lm_weight=c.lm_weight, word_score=c.word_score, unk_word="<unk>", unk_score=c.unk_score,
            sil_score=0.0, log_add=False, blank_token="-", sil_token="|",
        )  # fmt: skip

    def with_weights(self, lm_weight: float, word_score: float) -> BeamSearchDecoder:
        """The same decoder (the same LM and lexicon, not built again) with another LM weight and word score:
        what tuning on the validation set tries."""
        other = copy.copy(self)
        other.cfg = replace(self.cfg, lm_weight=float(lm_weight), word_score=float(word_score))
        other._search = self._make(other.cfg)
        return other

    def nbest(self, log_probs: Tensor, lengths: Tensor, n: int) -> list[list[tuple[str, float]]]:
        """Up to ``n`` distinct ``(text, score)`` per utterance, best first (score: acoustic + weighted LM + word
        scores, in nats). The flashlight backend gives the best one only."""
        if self.cfg.backend == "torch":
            return [[(h.text, h.score) for h in hyps] for hyps in self._search.search(log_probs, lengths, n)]
        emissions = log_probs.detach().float().cpu().contiguous()
        hyps = self._search(emissions, lengths.cpu().to(torch.int32))
        return [
            [(text, float(h[0].score))] if h else []
            for text, h in zip(self(log_probs, lengths), hyps, strict=True)
        ]

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """Decode (B, T, V) log-posteriors with (B,) valid lengths into B strings."""
        if self.cfg.backend == "torch":
            return self._search(log_probs, lengths)
        emissions = log_probs.detach().float().cpu().contiguous()
        hyps = self._search(emissions, lengths.cpu().to(torch.int32))
        tokens = flashlight_tokens(self.vocab)
        out = []
        for nbest in hyps:
            if not nbest:
                out.append("")
                continue
            h = nbest[0]
            if self.cfg.lexicon:
                words = [w for w in h.words if w not in ("<unk>", "<s>", "</s>")]
            else:
                chars = "".join(tokens[i] for i in h.tokens.tolist() if i != self.vocab.blank)
                words = chars.replace("|", " ").split()
            out.append(" ".join(words))
        return out
