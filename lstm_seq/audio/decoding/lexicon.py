"""The lexicon as a character trie in tensors, for lexicon-constrained CTC beam search.

Node 0 is the root (between words). ``child[n, c]`` is the node reached from ``n`` by token ``c`` (−1:
none); ``word[n]`` is the lexicon index of the word spelled by the path to ``n`` (−1: none). Each node
carries a *smeared* LM score, the best log10 p(w | <s>) of the words below it, so that a hypothesis inside
a word already holds an estimate of the LM score its word will get (the look-ahead flashlight and
torchaudio call max smearing); the root's is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstm_seq.audio.decoding.ngram import NGramLM


class LexiconTrie:
    """A trie over token ids.

    Args:
        words: the lexicon (distinct words).
        spell: each word's token ids (no word-boundary token).
        num_tokens: V, the size of the token vocabulary.
        lm: the LM that scores the words (smearing and :attr:`lm_ids`); None: no LM (all scores 0).
    """

    def __init__(
        self, words: Sequence[str], spell: Sequence[Sequence[int]], num_tokens: int, lm: NGramLM | None
    ) -> None:
        self.words = list(words)
        children: list[dict[int, int]] = [{}]
        ends: dict[int, int] = {}
        for w, tokens in enumerate(spell):
            node = 0
            for t in tokens:
                node = children[node].setdefault(int(t), len(children))
                if node == len(children):
                    children.append({})
            if node != 0:
                ends.setdefault(node, w)  # a second word with the same spelling is never reachable
        n = len(children)
        child = torch.full((n, num_tokens), -1, dtype=torch.int64)
        for p, kids in enumerate(children):
            for t, c in kids.items():
                child[p, t] = c
        word = torch.full((n,), -1, dtype=torch.int64)
        for node, w in ends.items():
            word[node] = w
        self.lm_ids = torch.tensor([lm.word_id(w) if lm else -1 for w in self.words], dtype=torch.int64)
        unigram = torch.zeros(len(self.words))
        if lm is not None and self.words:
            start = torch.full((1, lm.order - 1), -1, dtype=torch.int64)
            if lm.order > 1:
                start[0, -1] = lm.bos
            unigram = lm.score(lm.context_ids(start), self.lm_ids[None, :]).reshape(-1).float()
        # smear: max over the subtree, children before parents (node ids grow with depth along a path)
        smear = torch.full((n,), float("-inf"))
        for node, w in ends.items():
            smear[node] = unigram[w]
        for p in range(n - 1, 0, -1):
            for c in children[p].values():
                smear[p] = torch.maximum(smear[p], smear[c])
        smear[0] = 0.0
        self.child, self.word, self.smear = child, word, smear
        self.has_children = (child >= 0).any(1)
        self._on: dict[torch.device, tuple[Tensor, ...]] = {}

    def on(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(child, word, smear, has_children, lm_ids) on ``device``."""
        if device not in self._on:
            self._on[device] = tuple(
                t.to(device) for t in (self.child, self.word, self.smear, self.has_children, self.lm_ids)
            )
        return self._on[device]  # type: ignore[return-value]
