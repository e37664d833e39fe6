"""Batched CTC beam search with a lexicon trie and a word n-gram LM, in torch (CPU or GPU).

Every utterance of a batch keeps ``K`` hypotheses. A hypothesis is a state

    (trie node, the last N−1 LM words, the token of the previous frame)

with one score, ``acoustic log-prob + lm_weight · LM log10-prob + word_score · words`` (the LM in log10 as
ARPA files and flashlight/KenLM give it, so weights carry over). At each frame every hypothesis is extended
by every token at once, a ``(B, K, V)`` tensor of candidates:

- blank, or the previous frame's token again (CTC collapses both): the state keeps its node and words;
- the word boundary (space): only between words, at the root;
- another character: the trie's child; if a word ends there, a second candidate emits the word (back to the
  root, LM-scored, ``word_score`` added); a candidate inside a word carries the smeared LM look-ahead.

Candidates of the same state are merged (the best survives: Viterbi, as flashlight with ``log_add=False``),
those more than ``beam_threshold`` below the best are dropped, and the best ``K`` go on. The words each
survivor emitted and its parent are recorded per frame and read back at the end, where ``</s>`` is scored
and hypotheses inside a word are dropped. Without a lexicon the search spells freely (states are the
character prefix) and no word LM applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lstm_seq.audio.decoding.lexicon import LexiconTrie
from lstm_seq.audio.decoding.ngram import NGramLM

_MIX = 0x9E3779B97F4A7C15 - (1 << 64)  # an odd 64-bit multiplier (golden ratio), as a signed int64


def _mix(key: Tensor, value: Tensor) -> Tensor:
    """Fold ``value`` into the int64 hash ``key`` (wrapping multiply-add)."""
    return key * _MIX + (value + 2)


@dataclass(frozen=True)
class Hypothesis:
    """One decoded hypothesis: its text, total score and (lexicon mode) its words."""

    text: str
    score: float
    words: tuple[str, ...] = ()


class CTCBeamSearch:
    """Decode CTC log-posteriors with a lexicon and an n-gram LM.

    Args:
        num_tokens: V.
        blank: the blank's token id.
        space: the word boundary's token id.
        tokens: the symbol of each token id (to spell lexicon-free output).
        lexicon: the trie (None: free spelling, no word LM).
        lm: the word LM (None: no LM).
        beam_size: K hypotheses per utterance.
        beam_threshold: candidates this far below the best are dropped.
        lm_weight: weight of the log10 LM score.
        word_score: added per word.
    """

    def __init__(
        self,
        num_tokens: int,
        blank: int,
        space: int,
        tokens: list[str],
        lexicon: LexiconTrie | None,
        lm: NGramLM | None,
        beam_size: int = 50,
        beam_threshold: float = 25.0,
        lm_weight: float = 1.0,
        word_score: float = 0.0,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be ≥ 1, got {beam_size}")
        self.num_tokens, self.blank, self.space, self.tokens = num_tokens, blank, space, tokens
        self.lexicon = lexicon
        self.lm = lm if lexicon is not None else None
        self.beam_size, self.beam_threshold = beam_size, beam_threshold
        self.lm_weight, self.word_score = lm_weight, word_score
        self._step_cache: dict[torch.device, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] = {}

    def search(self, log_probs: Tensor, lengths: Tensor, nbest: int = 1) -> list[list[Hypothesis]]:
        """Decode a batch (on the CPU with one intra-op thread: each step's tensors are small, and on a busy
        2-core machine two threads made it 6.6× slower; benchmarks/RESULTS.md).

        Args:
            log_probs: (B, T, V) log-posteriors (any device; decoding runs there, in float32).
            lengths: (B,) valid frames.
            nbest: hypotheses returned per utterance (best first).
        Returns:
            B lists of up to ``nbest`` hypotheses.
        """
        if log_probs.device.type != "cpu":
            return self._search(log_probs, lengths, nbest)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._search(log_probs, lengths, nbest)
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def _search(self, log_probs: Tensor, lengths: Tensor, nbest: int) -> list[list[Hypothesis]]:
        lp = log_probs.detach().float()
        device = lp.device
        B, _, V = lp.shape
        K = self.beam_size
        lengths = lengths.to(device)
        lexicon, lm = self.lexicon, self.lm
        H = lm.order - 1 if lm is not None else 0
        rows = torch.arange(B, device=device)[:, None]
        if lexicon is not None:
            step_node, step_lm, step_word, smear_t, lm_ids = self._steps(device)
        # the state of every hypothesis
        score = torch.full((B, K), float("-inf"), device=device)
        score[:, 0] = 0.0
        node = torch.zeros(B, K, dtype=torch.int64, device=device)  # trie node (lexicon) / prefix hash (free)
        prev = torch.full((B, K), -1, dtype=torch.int64, device=device)
        hist = torch.full((B, K, H), -1, dtype=torch.int64, device=device)
        if H:
            hist[..., -1] = lm.bos  # type: ignore[union-attr]
        parents, emits = [], []
        beam_idx = torch.arange(K, device=device).expand(B, K)
        keep = min(3 * K, 2 * K * V)  # candidates looked at for merging (see the merge below)
        for t in range(int(lengths.max().item()) if B else 0):
            e = lp[:, t, None, :]  # (B, 1, V)
            rep = (prev >= 0) & (prev != self.blank)  # (B, K) a token to repeat (CTC collapses it)
            prev0 = prev.clamp(min=0)[..., None]  # (B, K, 1)
            if lexicon is not None:
                # every token from every beam at once: the trie's step tables, then the two tokens that keep
                # the state (blank, and the previous token repeated) overwrite their columns
                base = score[..., None] + e + step_lm[node]  # (B, K, V)
                base[..., self.blank] = score + e[:, :, self.blank]
                rep_sc = score[..., None] + e.expand(B, K, V).gather(2, prev0)
                base.scatter_(2, prev0, torch.where(rep[..., None], rep_sc, base.gather(2, prev0)))
                wid = step_word[node]  # (B, K, V) lexicon index of the word a token completes, or -1
                wid.scatter_(2, prev0, torch.where(rep[..., None], -1, wid.gather(2, prev0)))
                word_sc = torch.full_like(base, -torch.inf)
                at = (wid >= 0).nonzero(as_tuple=True)  # LM-score only the candidates that end a word
                if at[0].numel():
                    lm_w = self._lm_score(hist[at[0], at[1]], lm_ids[wid[at]]) if lm is not None else 0.0
                    smear_here = smear_t[node[at[0], at[1]]]
                    lm_delta = self.lm_weight * (lm_w - smear_here) + self.word_score
                    word_sc[at] = score[at[0], at[1]] + e[at[0], 0, at[2]] + lm_delta
                cand = torch.cat([base.reshape(B, -1), word_sc.reshape(B, -1)], 1)  # (B, 2KV)
            else:
                cand = (score[..., None] + e).reshape(B, -1)
            best = cand.max(1, keepdim=True).values
            cand = torch.where(cand < best - self.beam_threshold, -torch.inf, cand)
            # the best `keep` candidates; their states follow from the index (set, beam, token)
            top_sc, idx = cand.topk(min(keep, cand.shape[1]), 1)
            is_word = idx >= K * V
            k_of, v_of = (idx % (K * V)) // V, idx % V
            c_prev = v_of
            c_same = (v_of == self.blank) | ((v_of == prev.gather(1, k_of)) & rep.gather(1, k_of))
            here = node.gather(1, k_of)
            c_hist = hist[rows, k_of]  # (B, keep, H)
            if lexicon is not None:
                c_word = wid[rows, k_of, v_of]
                c_node = torch.where(is_word, 0, torch.where(c_same, here, step_node[here, v_of]))
                if H:
                    shifted = torch.cat([c_hist[..., 1:], lm_ids[c_word.clamp(min=0)][..., None]], -1)
                    c_hist = torch.where(is_word[..., None], shifted, c_hist)
                c_emit = torch.where(is_word, c_word, -1)
            else:
                c_node = torch.where(c_same, here, _mix(here, v_of))
                c_emit = torch.where(c_same, -1, v_of)
            # merge candidates of the same state (the best survives): sort by state, best first within one.
            # Exact whenever the best `keep` candidates hold >= K distinct states (else fewer beams go on).
            key = _mix(c_node, c_prev)
            for j in range(H):
                key = _mix(key, c_hist[..., j])
            by_key = key.argsort(dim=1, stable=True)  # top_sc is sorted, so the first of a run is its best
            k_sorted = key.gather(1, by_key)
            first = torch.ones_like(k_sorted, dtype=torch.bool)
            first[:, 1:] = k_sorted[:, 1:] != k_sorted[:, :-1]
            merged = torch.full_like(top_sc, -torch.inf).scatter_(
                1, by_key, torch.where(first, top_sc.gather(1, by_key), -torch.inf)
            )
            n_out = min(K, merged.shape[1])
            new_sc, pick = merged.topk(n_out, 1)
            if n_out < K:  # fewer candidates than beams (tiny vocabularies)
                pick = torch.cat([pick, pick[:, :1].expand(B, K - n_out)], 1)
                new_sc = torch.cat([new_sc, torch.full((B, K - n_out), -torch.inf, device=device)], 1)
            live = (t < lengths)[:, None]  # utterances that still have frames
            score = torch.where(live, new_sc, score)
            node = torch.where(live, c_node.gather(1, pick), node)
            prev = torch.where(live, c_prev.gather(1, pick), prev)
            hist = torch.where(live[..., None], c_hist.gather(1, pick[..., None].expand(B, K, H)), hist)
            parents.append(torch.where(live, k_of.gather(1, pick), beam_idx))
            emits.append(torch.where(live, c_emit.gather(1, pick), -1))
        final = score
        if lexicon is not None:
            if lm is not None:
                final = final + self.lm_weight * self._lm_score(
                    hist, torch.full((B, K), lm.eos, dtype=torch.int64, device=device)
                )
            inside = node != 0  # a word not finished: dropped unless nothing else is left
            any_root = (~inside & torch.isfinite(final)).any(1, keepdim=True)
            final = torch.where(inside & any_root, -torch.inf, final)
        return self._backtrack(final, parents, emits, nbest)

    def _steps(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The trie as per-(node, token) step tables on ``device`` (built once per device):

        - ``step_node (N, V)``: the node a token leads to (a child; the root itself for the word boundary at
          the root; −1 nowhere);
        - ``step_lm (N, V)``: ``lm_weight`` × the look-ahead change of a step that stays inside a word (0 for
          the boundary at the root; −inf where no such step exists, e.g. to a node without children);
        - ``step_word (N, V)``: the lexicon index of the word the token completes, or −1;

        then the smear of each node (N,) and the LM id of each lexicon word (W,)."""
        if device not in self._step_cache:
            assert self.lexicon is not None
            child, word, smear, kids, lm_ids = self.lexicon.on(torch.device("cpu"))
            kid0 = child.clamp(min=0)
            step_node = child.clone()
            inside = (child >= 0) & kids[kid0]
            step_lm = torch.where(inside, self.lm_weight * (smear[kid0] - smear[:, None]), -torch.inf)
            step_word = torch.where(child >= 0, word[kid0], -1)
            if 0 <= self.space < self.num_tokens:
                step_node[:, self.space], step_lm[:, self.space], step_word[:, self.space] = (
                    -1,
                    -torch.inf,
                    -1,
                )
                step_node[0, self.space], step_lm[0, self.space] = 0, 0.0
            step_node[:, self.blank], step_lm[:, self.blank], step_word[:, self.blank] = -1, -torch.inf, -1
            self._step_cache[device] = tuple(
                x.to(device) for x in (step_node, step_lm, step_word, smear, lm_ids)
            )  # type: ignore[assignment]
        return self._step_cache[device]

    def _lm_score(self, hist: Tensor, word: Tensor) -> Tensor:
        """log10 p(word | hist) for histories (..., H) and words (...)."""
        assert self.lm is not None
        return self.lm.score(self.lm.context_ids(hist), word)

    def _backtrack(
        self, final: Tensor, parents: list[Tensor], emits: list[Tensor], nbest: int
    ) -> list[list[Hypothesis]]:
        B, K = final.shape
        final = final.cpu()
        par = torch.stack(parents).cpu() if parents else torch.zeros(0, B, K, dtype=torch.int64)
        emi = torch.stack(emits).cpu() if emits else torch.zeros(0, B, K, dtype=torch.int64)
        order = final.argsort(1, descending=True)
        out: list[list[Hypothesis]] = []
        for b in range(B):
            hyps: list[Hypothesis] = []
            seen: set[str] = set()  # states that differ only in the last token or blank give the same text
            for k in order[b].tolist():
                sc = float(final[b, k])
                if len(hyps) == nbest or (hyps and sc == float("-inf")):
                    break
                seq = []
                for t in range(par.shape[0] - 1, -1, -1):
                    if emi[t, b, k] >= 0:
                        seq.append(int(emi[t, b, k]))
                    k = int(par[t, b, k])
                seq.reverse()
                if self.lexicon is not None:
                    words = tuple(self.lexicon.words[i] for i in seq)
                    text = " ".join(words)
                else:
                    text = " ".join("".join(self.tokens[i] for i in seq).split())
                    words = tuple(text.split())
                if text not in seen:
                    seen.add(text)
                    hyps.append(Hypothesis(text if sc > float("-inf") else "", sc, words))
            out.append(hyps)
        return out

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """The best transcript of each of B utterances ((B, T, V) log-posteriors, (B,) lengths)."""
        return [h[0].text if h else "" for h in self.search(log_probs, lengths)]
