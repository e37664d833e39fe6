"""Character vocabulary of the acoustic model and transcript normalisation.

Index 0 is the CTC blank, then space, apostrophe and a-z (29 symbols). The vocabulary is saved in
every checkpoint (:meth:`CharVocab.to_dict`), so decoding always uses the training alphabet.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

BLANK = "<blank>"
DEFAULT_SYMBOLS = " '" + "abcdefghijklmnopqrstuvwxyz"

# Characters mapped to something in the alphabet before anything is dropped.
_REPLACE = {
    "\u2019": "'",  # right single quotation mark
    "\u2018": "'",
    "`": "'",
    "\u00b4": "'",
    "-": " ",
    "\u2013": " ",
    "\u2014": " ",
    "_": " ",
    "\t": " ",
    "\n": " ",
}
_SPACES = re.compile(r" +")


@dataclass(frozen=True)
class NormalizedText:
    """A transcript after :func:`normalize_text`.

    Attributes:
        text: lower-case text over the vocabulary's symbols, single spaces, stripped.
        n_oov: how many characters outside the vocabulary were dropped.
    """

    text: str
    n_oov: int


def normalize_text(text: str, symbols: str = DEFAULT_SYMBOLS) -> NormalizedText:
    """Lower-case, strip accents (é → e), map dashes/underscores to spaces and curly quotes to ``'``,
    drop every other character outside ``symbols`` and collapse runs of spaces.

    Mapped characters (curly quotes, dashes) and punctuation that merely separates words
    (``,.?!;:"()``) are not counted; every other dropped character (digits, symbols, other
    scripts) counts in ``n_oov``.
    """
    allowed = set(symbols)
    out: list[str] = []
    n_oov = 0
    for ch in unicodedata.normalize("NFKD", text.lower()):
        if ch in allowed:
            out.append(ch)
        elif unicodedata.combining(ch):
            continue  # accent of the previous letter
        elif ch in _REPLACE:
            out.append(_REPLACE[ch])
        elif ch.isspace():
            out.append(" ")
        elif ch in ',.?!;:"()':
            continue
        else:
            n_oov += 1
    return NormalizedText(_SPACES.sub(" ", "".join(out)).strip(), n_oov)


class CharVocab:
    """Characters ↔ ids with the CTC blank at index 0.

    Example:
        >>> v = CharVocab()
        >>> v.decode(v.encode("it's red"))
        "it's red"
    """

    blank: int = 0

    def __init__(self, symbols: str = DEFAULT_SYMBOLS) -> None:
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"vocabulary symbols repeat: {symbols!r}")
        self.symbols = symbols
        self.tokens: list[str] = [BLANK, *symbols]
        self._index = {ch: i for i, ch in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (which must already be normalised: unknown characters raise KeyError)."""
        try:
            return [self._index[ch] for ch in text]
        except KeyError as exc:
            raise KeyError(f"character {exc.args[0]!r} is not in the vocabulary {self.symbols!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; blanks are skipped (no CTC collapsing: see ``decode.greedy``)."""
        return "".join(self.tokens[i] for i in ids if i != self.blank)

    def normalize(self, text: str) -> NormalizedText:
        """:func:`normalize_text` with this vocabulary's symbols."""
        return normalize_text(text, self.symbols)

    def to_dict(self) -> dict[str, str]:
        return {"symbols": self.symbols}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> CharVocab:
        return cls(d["symbols"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and other.symbols == self.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)
