"""Greedy and beam search for caption decoders, batched across images and beams on the model's device.

Beam search keeps B·K rows in one tensor (no loop over images), a pool of the K best finished hypotheses
per image scored with a length penalty, and falls back to the best unfinished hypothesis when nothing emits
``<end>`` before ``max_len``. Every operation is row-wise, so an image's caption never depends on which
other images share its batch.

Against captions that repeat themselves ("a big blue square a big blue square and a big blue square"):
- ``no_repeat_ngram`` = n with ``repeat_penalty`` = p: a word that would complete an n-gram the hypothesis
  already holds loses p nats (``inf`` forbids it). With n = 4 that is a repeated "a <size> <colour> <shape>"
  object phrase, while "a small red circle and a small red square" stays free; ``repeat_only`` narrows it to
  n-grams that end in given words (n = 2 and the shape words: a repeated "<colour> <shape>" whatever its
  size). Greedy search applies it too.
- ``coverage_penalty`` = β (beam only): a finished hypothesis gains β · mean over grid cells of
  log(clamp(Σ_t α_t, 0.01, 1)), GNMT's coverage penalty from the attention weights, averaged over cells: a
  caption that ends before it has looked at every salient part of the image scores lower.
Both default to off (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_seq.vision.decoder import CaptionDecoder, Memory, State


@dataclass
class Decoded:
    """Search output for B images.

    tokens: (B, T) word ids (no ``<start>``), ``<end>``-terminated or cut at max_len, padded with pad_id.
    lengths: (B,) number of words before ``<end>``.
    scores: (B,) summed log-probability (greedy) or length-normalised score (beam).
    alphas: (B, T, L) attention weights per emitted token (attention decoders), else None.
    pool_tokens, pool_lengths, pool_scores: beam search only: the K best finished hypotheses per image,
        best first — (B, K, T), (B, K), (B, K) with ``-inf`` scores for empty slots; else None.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor
    alphas: torch.Tensor | None
    pool_tokens: torch.Tensor | None = None
    pool_lengths: torch.Tensor | None = None
    pool_scores: torch.Tensor | None = None


def _expand(memory: Memory, state: State, k: int) -> tuple[Memory, State]:
    mem = {n: t.repeat_interleave(k, dim=0) for n, t in memory.items()}
    return mem, (state[0].repeat_interleave(k, dim=1), state[1].repeat_interleave(k, dim=1))


def _never(logp: torch.Tensor, *ids: int) -> torch.Tensor:
    """Forbid tokens that must never be emitted (``<start>``, ``<pad>``): logp (N, V)."""
    logp[:, list(ids)] = float("-inf")
    return logp


def repeated_ngram_mask(seqs: torch.Tensor, t: int, n: int, vocab_size: int) -> torch.Tensor:
    """Which next words would repeat an n-gram.

    Args:
        seqs: (N, T) words so far; only the first ``t`` columns are read.
        t: the step about to be taken (words 0..t-1 are emitted).
        n: n-gram size (≥ 1).

    Returns:
        (N, V) bool: True where word w after seqs[:, :t] completes an n-gram already in seqs[:, :t].
    """
    if n < 1 or t < n:
        return torch.zeros(seqs.shape[0], vocab_size, dtype=torch.bool, device=seqs.device)
    win = seqs[:, :t].unfold(1, n, 1)  # (N, t - n + 1, n): every n-gram so far
    if n == 1:
        match = torch.ones(win.shape[:2], device=seqs.device)
    else:  # the n-grams whose first n - 1 words are the last n - 1 words emitted
        match = (win[:, :, : n - 1] == seqs[:, None, t - n + 1 : t]).all(-1).float()  # (N, t - n + 1)
    hits = torch.zeros(seqs.shape[0], vocab_size, device=seqs.device)
    return hits.scatter_add_(1, win[:, :, n - 1], match) > 0


def _penalise_repeats(
    logp: torch.Tensor, seqs: torch.Tensor, t: int, n: int, penalty: float, only: torch.Tensor | None = None
) -> torch.Tensor:
    """logp (N, V) minus ``penalty`` where the next word repeats an n-gram of seqs (N, T)[:, :t]; with
    ``only`` (V,) bool, just for the n-grams that end in one of those words."""
    if n <= 0 or penalty <= 0 or t < n:
        return logp
    mask = repeated_ngram_mask(seqs, t, n, logp.shape[-1])
    if only is not None:
        mask &= only.to(mask.device)
    return torch.where(mask, logp - penalty, logp)


def coverage_score(cov: torch.Tensor) -> torch.Tensor:
    """GNMT's coverage term averaged over cells: cov (..., L) summed attention → (...) in [log 0.01, 0]."""
    return cov.clamp(0.01, 1.0).log().mean(-1)


def length_penalty(length: torch.Tensor, exponent: float) -> torch.Tensor:
    """GNMT's ``((5 + len) / 6) ** exponent`` (GNMT's α); 0 → plain log-probability sums."""
    return ((5.0 + length.float()) / 6.0) ** exponent


@torch.no_grad()
def greedy(
    decoder: CaptionDecoder,
    grid: torch.Tensor,
    pooled: torch.Tensor,
    start_id: int,
    end_id: int,
    pad_id: int,
    max_len: int = 20,
    no_repeat_ngram: int = 0,
    repeat_penalty: float = 0.0,
    repeat_only: torch.Tensor | None = None,
) -> Decoded:
    """Argmax at every step (after the repeated-n-gram penalty, see the module doc). grid (B, L, C),
    pooled (B, C)."""
    b, dev = grid.shape[0], grid.device
    memory = decoder.prepare(grid, pooled)
    state = decoder.init_state(memory)
    tok = torch.full((b,), start_id, dtype=torch.long, device=dev)
    out = torch.full((b, max_len), pad_id, dtype=torch.long, device=dev)
    lengths = torch.full((b,), max_len, dtype=torch.long, device=dev)
    scores = torch.zeros(b, device=dev)
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    alphas: list[torch.Tensor] = []
    for t in range(max_len):
        logits, state, alpha = decoder.step(tok, state, memory)
        logp = _never(torch.log_softmax(logits.float(), dim=-1), start_id, pad_id)
        logp = _penalise_repeats(logp, out, t, no_repeat_ngram, repeat_penalty, repeat_only)
        tok = logp.argmax(-1)
        scores += torch.where(done, torch.zeros_like(scores), logp.gather(1, tok[:, None]).squeeze(1))
        out[:, t] = torch.where(done, torch.full_like(tok, pad_id), tok)
        if alpha is not None:
            alphas.append(alpha)
        newly = (~done) & (tok == end_id)
        lengths = torch.where(newly, torch.full_like(lengths, t), lengths)
        done |= newly
        if bool(done.all()):
            break
    al = torch.stack(alphas, 1) if alphas else None
    return Decoded(out, lengths, scores, al)


@torch.no_grad()
def beam_search(
    decoder: CaptionDecoder,
    grid: torch.Tensor,
    pooled: torch.Tensor,
    start_id: int,
    end_id: int,
    pad_id: int,
    beam_size: int = 3,
    max_len: int = 20,
    length_exponent: float = 0.0,
    no_repeat_ngram: int = 0,
    repeat_penalty: float = 0.0,
    coverage_penalty: float = 0.0,
    repeat_only: torch.Tensor | None = None,
) -> Decoded:
    """Beam search over B images × K beams at once.

    Args:
        decoder: a :class:`CaptionDecoder` in eval mode.
        grid: (B, L, C) encoder grid; pooled: (B, C).
        beam_size: K.
        max_len: most words per caption (``<end>`` not counted).
        length_exponent: length-penalty exponent (:func:`length_penalty`; GNMT's α, the config's
            ``length_penalty``); larger favours longer captions. (``alpha`` in this file is attention.)
        no_repeat_ngram, repeat_penalty: a word that completes an n-gram already in its hypothesis loses
            ``repeat_penalty`` nats (``inf``: forbidden); 0 = off. ``repeat_only`` (V,) bool: only n-grams
            ending in these words (e.g. the shape words with n = 2: a repeated "<colour> <shape>").
        coverage_penalty: β of the coverage term added to finished hypotheses (:func:`coverage_score`;
            attention decoders only); 0 = off.

    Returns:
        the best hypothesis per image (:class:`Decoded`; ``scores`` are length-normalised).
    """
    b, k, dev = grid.shape[0], beam_size, grid.device
    memory0 = decoder.prepare(grid, pooled)
    memory, state = _expand(memory0, decoder.init_state(memory0), k)
    n_cells = grid.shape[1]
    neg_inf = torch.tensor(float("-inf"), device=dev)
    # alive beams
    seqs = torch.full((b, k, max_len), pad_id, dtype=torch.long, device=dev)
    att = torch.zeros(b, k, max_len, n_cells, device=dev) if decoder.has_attention else None
    beam_scores = torch.full((b, k), float("-inf"), device=dev)
    beam_scores[:, 0] = 0.0  # all beams start identical: keep one
    tok = torch.full((b * k,), start_id, dtype=torch.long, device=dev)
    # finished pool (K best per image, length-normalised)
    fin_seqs = torch.full((b, k, max_len), pad_id, dtype=torch.long, device=dev)
    fin_att = torch.zeros_like(att) if att is not None else None
    fin_scores = torch.full((b, k), float("-inf"), device=dev)
    fin_len = torch.zeros(b, k, dtype=torch.long, device=dev)
    rows = torch.arange(b, device=dev)[:, None]
    for t in range(max_len):
        logits, state, alpha_t = decoder.step(tok, state, memory)
        logp = _never(torch.log_softmax(logits.float(), dim=-1), start_id, pad_id)
        logp = _penalise_repeats(
            logp, seqs.view(b * k, max_len), t, no_repeat_ngram, repeat_penalty, repeat_only
        )
        v = logp.shape[-1]
        cand = (beam_scores[:, :, None] + logp.view(b, k, v)).view(b, k * v)
        top_s, top_i = cand.topk(min(2 * k, k * v), dim=1)  # (B, 2K)
        src_beam, word = top_i // v, top_i % v
        prev_seqs = seqs[rows, src_beam]  # (B, 2K, max_len)
        prev_seqs[:, :, t] = word
        is_end = word == end_id
        if att is not None and alpha_t is not None:
            prev_att = att[rows, src_beam]
            prev_att[:, :, t] = alpha_t.view(b, k, -1)[rows, src_beam]
        # finished candidates enter the pool with their normalised score
        norm = top_s / length_penalty(torch.full_like(top_s, t), length_exponent)
        if coverage_penalty > 0 and att is not None and alpha_t is not None:
            norm = norm + coverage_penalty * coverage_score(prev_att[:, :, : t + 1].sum(2))
        new_fin = torch.where(is_end & torch.isfinite(top_s), norm, neg_inf)
        pool_scores = torch.cat([fin_scores, new_fin], 1)
        fin_scores, pick = pool_scores.topk(k, dim=1)
        pool_seqs = torch.cat([fin_seqs, prev_seqs], 1)
        fin_seqs = pool_seqs[rows, pick]
        fin_len = torch.cat([fin_len, torch.full_like(top_s, t, dtype=torch.long)], 1)[rows, pick]
        if fin_att is not None and att is not None:
            fin_att = torch.cat([fin_att, prev_att], 1)[rows, pick]
        # alive: the K best candidates that did not end
        alive_s = torch.where(is_end, neg_inf, top_s)
        beam_scores, keep = alive_s.topk(k, dim=1)
        seqs = prev_seqs[rows, keep]
        if att is not None:
            att = prev_att[rows, keep]
        flat_src = (src_beam[rows, keep] + rows * k).view(-1)
        state = (state[0].index_select(1, flat_src), state[1].index_select(1, flat_src))
        tok = word[rows, keep].view(-1)
        # stop when no alive beam can beat the worst pooled hypothesis of any image
        if length_exponent > 0:
            best_possible = beam_scores[:, 0] / length_penalty(
                torch.full_like(beam_scores[:, 0], max_len), length_exponent
            )
        else:
            best_possible = beam_scores[:, 0]
        if bool((fin_scores[:, -1] >= best_possible).all()):
            break
    # fallback: images with no finished hypothesis take their best alive one (cut at max_len)
    has_fin = torch.isfinite(fin_scores[:, 0])
    alive_norm = beam_scores[:, 0] / length_penalty(
        torch.full_like(beam_scores[:, 0], max_len), length_exponent
    )
    tokens = torch.where(has_fin[:, None], fin_seqs[:, 0], seqs[:, 0])
    lengths = torch.where(has_fin, fin_len[:, 0], torch.full_like(fin_len[:, 0], max_len))
    scores = torch.where(has_fin, fin_scores[:, 0], alive_norm)
    alphas = None
    if att is not None and fin_att is not None:
        alphas = torch.where(has_fin[:, None, None], fin_att[:, 0], att[:, 0])
    return Decoded(tokens, lengths, scores, alphas, fin_seqs, fin_len, fin_scores)
