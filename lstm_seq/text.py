"""Tokenising caption text the coco-caption way, shared by the caption vocabulary
(:mod:`lstm_seq.vision.vocab`) and the caption metrics (:mod:`lstm_seq.metrics.caption`)."""

from __future__ import annotations

import re

__all__ = ["tokenize"]

# Punctuation tokens that the coco-caption PTB tokeniser drops after tokenising.
_PUNCT = {
    "''",
    "'",
    "``",
    "`",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    '"',
}
_TOKEN_RE = re.compile(r"n't|'s|'re|'ve|'m|'ll|'d|[a-z0-9]+(?:[-.][a-z0-9]+)*|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it the way coco-caption's PTB tokeniser does (contractions split
    off, hyphenated words and decimals kept), then drop punctuation tokens.

    >>> tokenize("A man's red-and-white kite, flying.")
    ['a', 'man', "'s", 'red-and-white', 'kite', 'flying']
    """
    tokens = _TOKEN_RE.findall(text.lower())
    return [t for t in tokens if t not in _PUNCT]
