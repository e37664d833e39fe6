"""The decoding owner: what beam search needs beyond the acoustic model, built, tuned, attached and stored here.

A :class:`DecodingSetup` holds

- the **language model source**: either the training transcripts as a table of distinct sentences with their
  counts (an n-gram model of any order is estimated from it, exactly as from the raw transcripts, since the
  estimate depends on the counts only), or a user's ARPA file (``decode.lm_path``, e.g. a LibriSpeech 3-gram);
- the **lexicon**: the words beam search may spell (the training words, or the ARPA unigrams);
- the **tuned weights**: the LM weight and word score chosen on the validation set (:meth:`tune`).

Its life in a run: :func:`build` makes it from the settings and the training split; the module carries it
(``ASRModule.decoding``) so that every checkpoint Lightning writes holds it (:meth:`to_dict`); after training
:meth:`tune` returns a copy with the chosen weights and :meth:`store` writes that into the finished
checkpoints; ``mode=test``, ``mode=transcribe`` and :class:`~lstm_seq.audio.recognizer.Recognizer` read it back
with :meth:`from_checkpoint` and call :meth:`decoder`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lstm_seq.audio.decoding.decode import BeamConfig, BeamSearchDecoder
from lstm_seq.audio.decoding.lm import estimate_arpa
from lstm_seq.audio.decoding.ngram import BOS, EOS, UNK, read_arpa
from lstm_seq.audio.decoding.tune import Emissions, TuneResult, tune_beam
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.text_files import read_utf8
from lstm_seq.training.checkpoint_io import load_checkpoint_file, save_atomic

log = logging.getLogger(__name__)

CKPT_KEY = "asr_decoding"  # checkpoint entry of DecodingSetup.to_dict()
LEGACY_TEXTS, LEGACY_TUNED = "asr_lm_texts", "asr_decode"  # what checkpoints before it held
EMBED_ARPA_BYTES = 16 * 2**20  # a user ARPA up to this size travels inside the checkpoint


@dataclass(frozen=True)
class DecodingSetup:
    """The LM, the lexicon and the tuned weights of one recogniser.

    Attributes:
        sentences: distinct training sentences → count (empty when the LM comes from ``arpa``).
        arpa: the text of a user's ARPA file, or None.
        arpa_path: where that file was read from (kept for messages and re-reading a large file).
        arpa_sha256: its digest, so a re-read file is known to be the same one.
        words: the lexicon, sorted.
        lm_weight, word_score: tuned on the validation set; None until :meth:`tune` ran.
    """

    sentences: dict[str, int] = field(default_factory=dict)
    arpa: str | None = None
    arpa_path: str | None = None
    arpa_sha256: str | None = None
    words: tuple[str, ...] = ()
    lm_weight: float | None = None
    word_score: float | None = None

    # -------------------------------------------------------------------------------------- building
    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> DecodingSetup:
        """From training transcripts: the LM is estimated from their counts, the lexicon is their words."""
        sentences = Counter(" ".join(t.split()) for t in texts if t.strip())
        words = sorted({w for s in sentences for w in s.split()})
        return cls(sentences=dict(sorted(sentences.items())), words=tuple(words))

    @classmethod
    def from_arpa(cls, path: str | os.PathLike[str], vocab: CharVocab) -> DecodingSetup:
        """From an ARPA file: the lexicon is its unigrams that ``vocab`` can spell (others are skipped, with
        their number logged). The whole file is parsed here, before any training, so that a bad line of any
        order fails now. Raises :class:`FileNotFoundError` or :class:`ValueError` naming the file (and line)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"decode.lm_path: {p} does not exist")
        text = read_utf8(p, ValueError)
        unigrams = [g[0] for g in read_arpa(text, p)[0]]
        spellable = set(vocab.tokens) - {vocab.tokens[vocab.blank], " "}
        words = sorted(w for w in unigrams if w not in (BOS, EOS, UNK) and set(w) <= spellable)
        skipped = len([w for w in unigrams if w not in (BOS, EOS, UNK)]) - len(words)
        if not words:
            upper = [w for w in unigrams if w not in (BOS, EOS, UNK) and w != w.lower()]
            if upper and any(set(w.lower()) <= spellable for w in upper):  # LibriSpeech's LMs are upper case
                raise ValueError(
                    f"decode.lm_path: {p} has no unigram the model's characters can spell: its words are upper "
                    f"case (e.g. {upper[0]!r}) and the model's characters lower case; lower-case the file "
                    "first, e.g. tr '[:upper:]' '[:lower:]' < in.arpa > out.arpa"
                )
            raise ValueError(f"decode.lm_path: {p} has no unigram the model's characters can spell")
        if skipped:
            log.warning(
                "%s: %d unigrams use characters outside the model's vocabulary; not in the lexicon",
                p,
                skipped,
            )
        digest = hashlib.sha256(text.encode()).hexdigest()
        return cls(arpa=text, arpa_path=str(p), arpa_sha256=digest, words=tuple(words))

    def with_arpa(self, path: str | os.PathLike[str], vocab: CharVocab) -> DecodingSetup:
        """This model's setup with the LM and lexicon of another ARPA file (``decode.lm_path`` in
        ``mode=test`` / ``mode=transcribe``, e.g. in place of a checkpoint's broken or moved LM). The tuned
        weights stay when it is the very file they were tuned with (same SHA-256); otherwise they are dropped,
        and ``decode.lm_weight`` / ``decode.word_score`` (else 1.0 / 0.0) apply."""
        new = DecodingSetup.from_arpa(path, vocab)
        if new.arpa_sha256 == self.arpa_sha256:
            return replace(new, lm_weight=self.lm_weight, word_score=self.word_score)
        return new

    @property
    def has_lm_source(self) -> bool:
        return bool(self.sentences) or self.arpa is not None

    def arpa_text(self, order: int) -> str | None:
        """The ARPA text beam search reads: the user's file, or an ``order``-gram estimate from the sentences
        (None: ``order`` 0 or nothing to estimate from)."""
        if self.arpa is not None:
            return self.arpa
        if order <= 0 or not self.sentences:
            return None
        return estimate_arpa((s for s, n in self.sentences.items() for _ in range(n)), order=order)

    def beam_config(self, decode: Mapping[str, Any]) -> BeamConfig | None:
        """The :class:`BeamConfig` of ``conf/decode`` settings (None: greedy). A null ``lm_weight`` or
        ``word_score`` takes the tuned value, else 1.0 / 0.0."""
        if not decode.get("beam"):
            return None
        kwargs = {k: v for k, v in decode.items() if k in BeamConfig.__dataclass_fields__ and v is not None}
        tuned = {"lm_weight": self.lm_weight, "word_score": self.word_score}
        for key, default in (("lm_weight", 1.0), ("word_score", 0.0)):
            if decode.get(key) is None:
                kwargs[key] = tuned[key] if tuned[key] is not None else default
        return BeamConfig(**kwargs)

    def decoder(
        self, vocab: CharVocab, cfg: BeamConfig, work_dir: str | os.PathLike[str]
    ) -> BeamSearchDecoder | None:
        """A beam-search decoder of ``cfg`` over this LM and lexicon (its ``lm.arpa`` and ``lexicon.txt`` go to
        ``work_dir``); None, with a warning, when a lexicon or LM is asked for and there is none."""
        if not self.words and (cfg.lexicon or cfg.lm_order > 0):
            log.warning("no language model or lexicon stored with this model: greedy decoding only")
            return None
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        arpa = self.arpa_text(cfg.lm_order)
        lm_path = None
        if arpa is not None:
            lm_path = work / "lm.arpa"
            lm_path.write_text(arpa)
        return BeamSearchDecoder(vocab, cfg, self.words, lm_path, work)

    # -------------------------------------------------------------------------------------- tuning
    def tune(
        self,
        decoder: BeamSearchDecoder,
        emissions: Emissions,
        vocab: CharVocab,
        lm_weights: Sequence[float],
        word_scores: Sequence[float],
    ) -> tuple[DecodingSetup, TuneResult]:
        """Choose the weights on ``emissions`` (the validation set); returns the tuned copy and the table."""
        result = tune_beam(decoder, emissions, vocab, lm_weights, word_scores)
        return replace(self, lm_weight=result.lm_weight, word_score=result.word_score), result

    # -------------------------------------------------------------------------------------- storing
    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint (``weights_only`` loading reads it back). A user ARPA larger than
        :data:`EMBED_ARPA_BYTES` is stored by path and digest only."""
        arpa = self.arpa if self.arpa is not None and len(self.arpa) <= EMBED_ARPA_BYTES else None
        return {
            "sentences": list(self.sentences.items()),
            "arpa": arpa,
            "arpa_path": self.arpa_path,
            "arpa_sha256": self.arpa_sha256,
            "words": list(self.words) if self.arpa is not None else [],  # else: derived from the sentences
            "lm_weight": self.lm_weight,
            "word_score": self.word_score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecodingSetup:
        sentences = {str(s): int(n) for s, n in d.get("sentences", [])}
        arpa, path, digest = d.get("arpa"), d.get("arpa_path"), d.get("arpa_sha256")
        if arpa is None and path is not None:  # a large ARPA file: read it again, and check it is the same
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(
                    f"the checkpoint's language model {p} (decode.lm_path) no longer exists"
                )
            arpa = read_utf8(p, ValueError)
            if hashlib.sha256(arpa.encode()).hexdigest() != digest:
                raise ValueError(f"the language model {p} changed since the checkpoint was written")
        words = tuple(d.get("words") or sorted({w for s in sentences for w in s.split()}))
        return cls(sentences, arpa, path, digest, words, d.get("lm_weight"), d.get("word_score"))

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping[str, Any]) -> DecodingSetup:
        """The setup a checkpoint holds; checkpoints written before this class (raw transcripts and a separate
        tuned-weights entry) are read too. An empty setup when it holds none."""
        if CKPT_KEY in ckpt:
            return cls.from_dict(ckpt[CKPT_KEY])
        setup = cls.from_texts(ckpt.get(LEGACY_TEXTS, []))
        tuned = ckpt.get(LEGACY_TUNED) or {}
        return replace(setup, lm_weight=tuned.get("lm_weight"), word_score=tuned.get("word_score"))

    def store(self, path: str | os.PathLike[str]) -> None:
        """Write this setup into the checkpoint at ``path`` (atomically), replacing what it held: how the
        weights tuned after training reach the checkpoints that training wrote."""
        ckpt = load_checkpoint_file(path, "cpu", require_state_dict=False)
        ckpt.pop(LEGACY_TEXTS, None)
        ckpt.pop(LEGACY_TUNED, None)
        ckpt[CKPT_KEY] = self.to_dict()
        save_atomic(ckpt, path)

    def describe(self) -> str:
        """One line for logs."""
        src = (
            f"ARPA {self.arpa_path}"
            if self.arpa is not None
            else f"{sum(self.sentences.values())} transcripts"
        )
        tuned = (
            f", tuned lm_weight {self.lm_weight:.2f} / word_score {self.word_score:.2f}"
            if self.lm_weight is not None and self.word_score is not None
            else ""
        )
        return f"LM from {src}, lexicon of {len(self.words)} words{tuned}"


def build(decode: Mapping[str, Any], train_texts: Iterable[str], vocab: CharVocab) -> DecodingSetup:
    """The setup of a training run: the ARPA of ``decode.lm_path`` when given, else the training transcripts."""
    if decode.get("lm_path"):
        return DecodingSetup.from_arpa(decode["lm_path"], vocab)
    return DecodingSetup.from_texts(train_texts)
