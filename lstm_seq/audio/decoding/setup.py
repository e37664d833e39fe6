"""What a trained recogniser decodes with, beyond its acoustic model: :class:`DecodingSetup`.

A :class:`DecodingSetup` holds

- the **language model source**: either the training transcripts as a table of distinct sentences with their
  counts (an n-gram model of any order is estimated from it, exactly as from the raw transcripts, since the
  estimate depends on the counts only), or a user's ARPA file (``decode.lm_path``, e.g. a LibriSpeech 3-gram);
- the **lexicon**: the words beam search may spell (the training words, or the ARPA unigrams);
- the **tuned weights**: the LM weight and word score chosen on the validation set after training.

Its life in a run: :func:`build` makes it from the settings and the training split before the first step; the
module carries it (``ASRModule.decoding``) into every checkpoint (:meth:`to_dict`); after training the tuning
step (:func:`lstm_seq.audio.recipe.tune_decoding`) sets the weights and the run's ``final.ckpt`` holds them;
``pipelines.asr.test``, ``pipelines.asr.transcribe`` and :class:`~lstm_seq.audio.recognizer.Recognizer` read it back with
:meth:`from_checkpoint` and call :meth:`decoder`, which hands the LM and lexicon to
:func:`~lstm_seq.audio.decoding.decoder.build_decoder`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lstm_seq.audio.decoding.decode import BeamConfig
from lstm_seq.audio.decoding.decoder import BeamSearchDecoder, build_decoder
from lstm_seq.audio.decoding.lm import estimate
from lstm_seq.audio.decoding.ngram import BOS, EOS, UNK, NGramTable
from lstm_seq.audio.vocab import CharVocab
from lstm_seq.text_files import read_utf8

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
        lm_weight, word_score: tuned on the validation set; None until tuning ran.
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
        unigrams = NGramTable.from_arpa(text, p).unigrams()
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
        ``pipelines.asr.test`` / ``pipelines.asr.transcribe``, e.g. in place of a checkpoint's broken or moved LM). The tuned
        weights stay when it is the very file they were tuned with (same SHA-256); otherwise they are dropped,
        and ``decode.lm_weight`` / ``decode.word_score`` (else 1.0 / 0.0) apply."""
        new = DecodingSetup.from_arpa(path, vocab)
        if new.arpa_sha256 == self.arpa_sha256:
            return replace(new, lm_weight=self.lm_weight, word_score=self.word_score)
        return new

    @property
    def has_lm_source(self) -> bool:
        return bool(self.sentences) or self.arpa is not None

    def language_model(self, order: int) -> NGramTable | None:
        """The LM beam search uses: the user's ARPA file, or an ``order``-gram estimate from the sentences
        (None: ``order`` 0 or nothing to estimate from). The estimate goes straight into the table; no ARPA
        text is written."""
        if self.arpa is not None:
            return NGramTable.from_arpa(self.arpa, self.arpa_path or "the checkpoint's ARPA text")
        if order <= 0 or not self.sentences:
            return None
        return estimate((s for s, n in self.sentences.items() for _ in range(n)), order=order)

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
        self, vocab: CharVocab, cfg: BeamConfig, work_dir: str | os.PathLike[str] | None = None
    ) -> BeamSearchDecoder | None:
        """The beam-search decoder of ``cfg`` over this LM and lexicon (:func:`build_decoder`; ``work_dir``: the
        flashlight backend's files); None, with a warning, when a lexicon or LM is asked for and there is none."""
        if not self.words and (cfg.lexicon or cfg.lm_order > 0):
            log.warning("no language model or lexicon stored with this model: greedy decoding only")
            return None
        lm = self.language_model(cfg.lm_order)
        return build_decoder(vocab, cfg, lexicon=self.words, lm=lm, work_dir=work_dir)

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
