"""Caption decoders built on :class:`lstm_seq.LSTM` (the same module as the speech model), in two variants:

* :class:`ShowTellDecoder` — the pooled image vector initialises the LSTM state (Vinyals et al. 2015);
  teacher forcing runs the whole sequence through ``LSTM.forward`` in one call.
* :class:`AttentionDecoder` — soft attention over the feature grid at every step with a sigmoid gate on the
  context and doubly stochastic attention regularisation (Xu et al. 2015); steps through ``LSTM.step``.

Both expose the step API used by greedy and beam search (:mod:`lstm_seq.vision.decoding.beam`):
``memory = prepare(grid, pooled)``, ``state = init_state(memory)``,
``logits, state, alpha = step(tokens, state, memory)``. Memory tensors have the batch on dim 0, states
``(h, c)`` on dim 1, so search can reorder beams with ``index_select``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lstm_seq import LSTM
from lstm_seq.settings import check, one_of, positive, prob

State = tuple[torch.Tensor, torch.Tensor]
Memory = dict[str, torch.Tensor]


@dataclass(frozen=True)
class DecoderConfig:
    """The caption decoder (``conf/decoder``); stored in checkpoints. ``variant`` picks the class."""

    variant: str = one_of("attention", "show_tell", "attention")  # ShowTellDecoder | AttentionDecoder
    embed_dim: int = positive(128)  # word embedding size E
    hidden_size: int = positive(256)  # LSTM hidden size H
    num_layers: int = positive(1)
    dropout: float = prob(0.3)  # before the output layer (and between LSTM layers)

    def __post_init__(self) -> None:
        check(self, "decoder.")


@dataclass(frozen=True)
class AttentionDecoderConfig(DecoderConfig):
    attention_dim: int = positive(128)  # size A of the additive attention space


class CaptionDecoder(nn.Module):
    """Shared parts: word embedding, the LSTM, the state initialiser and the output layer.

    Args:
        vocab_size: V.
        feature_dim: C, channels of the encoder grid / pooled vector.
        embed_dim: word embedding size E.
        hidden_size: LSTM hidden size H.
        num_layers: LSTM layers.
        dropout: before the output layer (and between LSTM layers).
        lstm_input: size of the LSTM input at each step.
    """

    has_attention = False

    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        lstm_input: int,
    ) -> None:
        super().__init__()
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = LSTM(
            lstm_input, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.init_h = nn.Linear(feature_dim, hidden_size * num_layers)
        self.init_c = nn.Linear(feature_dim, hidden_size * num_layers)
        self.drop = nn.Dropout(dropout)

    def _state_from(self, v: torch.Tensor) -> State:
        """(B, C) → (h, c) each (num_layers, B, H)."""
        b = v.shape[0]
        h = torch.tanh(self.init_h(v)).view(b, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        c = torch.tanh(self.init_c(v)).view(b, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        return h, c

    def prepare(self, grid: torch.Tensor, pooled: torch.Tensor) -> Memory:
        """grid (B, L, C), pooled (B, C) → memory tensors (batch on dim 0)."""
        raise NotImplementedError

    def init_state(self, memory: Memory) -> State:
        raise NotImplementedError

    def step(
        self, tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """One step: tokens (B,) → logits (B, V), new state, attention weights (B, L) or None."""
        raise NotImplementedError

    def forward(
        self,
        grid: torch.Tensor,
        pooled: torch.Tensor,
        tokens: torch.Tensor,
        sampling_prob: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing (with optional scheduled sampling).

        Args:
            grid: (B, L, C) encoder grid.
            pooled: (B, C) pooled features.
            tokens: (B, T) input ids, starting with ``<start>`` (targets are tokens shifted by one).
            sampling_prob: probability of feeding the model's own previous argmax instead of the true
                word at each step t ≥ 1 (scheduled sampling; 0 = pure teacher forcing).

        Returns:
            logits (B, T, V) and attention weights (B, T, L) (None for show-and-tell).
        """
        memory = self.prepare(grid, pooled)
        state = self.init_state(memory)
        logits, alphas = [], []
        prev: torch.Tensor | None = None
        for t in range(tokens.shape[1]):
            inp = tokens[:, t]
            if sampling_prob > 0 and prev is not None:
                use_model = torch.rand(inp.shape, device=inp.device) < sampling_prob
                inp = torch.where(use_model, prev.argmax(-1).detach(), inp)
            prev, state, alpha = self.step(inp, state, memory)
            logits.append(prev)
            if alpha is not None:
                alphas.append(alpha)
        return torch.stack(logits, 1), (torch.stack(alphas, 1) if alphas else None)


class ShowTellDecoder(CaptionDecoder):
    """The image vector initialises the LSTM state; words are the only inputs."""

    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int = DecoderConfig.embed_dim,
        hidden_size: int = DecoderConfig.hidden_size,
        num_layers: int = DecoderConfig.num_layers,
        dropout: float = DecoderConfig.dropout,
    ) -> None:
        super().__init__(
            vocab_size, feature_dim, embed_dim, hidden_size, num_layers, dropout, lstm_input=embed_dim
        )
        self.out = nn.Linear(hidden_size, vocab_size)

    def prepare(self, grid: torch.Tensor, pooled: torch.Tensor) -> Memory:
        return {"pooled": pooled}

    def init_state(self, memory: Memory) -> State:
        return self._state_from(memory["pooled"])

    def step(self, tokens: torch.Tensor, state: State, memory: Memory) -> tuple[torch.Tensor, State, None]:
        h_t, state = self.lstm.step(self.embed(tokens), state)
        return self.out(self.drop(h_t)), state, None

    def forward(
        self, grid: torch.Tensor, pooled: torch.Tensor, tokens: torch.Tensor, sampling_prob: float = 0.0
    ) -> tuple[torch.Tensor, None]:
        if sampling_prob > 0:
            return super().forward(grid, pooled, tokens, sampling_prob)  # type: ignore[return-value]
        out, _ = self.lstm(self.embed(tokens), self._state_from(pooled))  # one call over all T steps
        return self.out(self.drop(out)), None


class AttentionDecoder(CaptionDecoder):
    """Soft attention over the grid at each step (additive scores), a sigmoid gate β on the context,
    the LSTM input ``[embed(word), β·context]`` and a deep output ``W_o tanh(W_h h + W_z context)``.

    Args:
        attention_dim: A, size of the additive attention space.
        (others as :class:`CaptionDecoder`)
    """

    has_attention = True

    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int = DecoderConfig.embed_dim,
        hidden_size: int = DecoderConfig.hidden_size,
        num_layers: int = DecoderConfig.num_layers,
        dropout: float = DecoderConfig.dropout,
        attention_dim: int = AttentionDecoderConfig.attention_dim,
    ) -> None:
        super().__init__(
            vocab_size,
            feature_dim,
            embed_dim,
            hidden_size,
            num_layers,
            dropout,
            lstm_input=embed_dim + feature_dim,
        )
        self.att_feat = nn.Linear(feature_dim, attention_dim)
        self.att_hidden = nn.Linear(hidden_size, attention_dim)
        self.att_score = nn.Linear(attention_dim, 1)
        self.gate = nn.Linear(hidden_size, feature_dim)
        self.out_h = nn.Linear(hidden_size, embed_dim)
        self.out_z = nn.Linear(feature_dim, embed_dim)
        self.out = nn.Linear(embed_dim, vocab_size)

    def prepare(self, grid: torch.Tensor, pooled: torch.Tensor) -> Memory:
        return {"grid": grid, "keys": self.att_feat(grid), "pooled": pooled}

    def init_state(self, memory: Memory) -> State:
        return self._state_from(memory["pooled"])

    def attend(self, h: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, H) → context (B, C) and weights (B, L)."""
        scores = self.att_score(torch.tanh(memory["keys"] + self.att_hidden(h).unsqueeze(1))).squeeze(-1)
        alpha = F.softmax(scores, dim=-1)
        return torch.bmm(alpha.unsqueeze(1), memory["grid"]).squeeze(1), alpha

    def step(
        self, tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        h_top = state[0][-1]
        ctx, alpha = self.attend(h_top, memory)
        ctx = torch.sigmoid(self.gate(h_top)) * ctx
        h_t, state = self.lstm.step(torch.cat([self.embed(tokens), ctx], dim=-1), state)
        logits = self.out(self.drop(torch.tanh(self.out_h(h_t) + self.out_z(ctx))))
        return logits, state, alpha


def doubly_stochastic_penalty(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Xu et al.'s regulariser: every grid cell should get a total attention of about 1 over the caption.

    Args:
        alphas: (B, T, L) attention weights.
        mask: (B, T) 1 for valid steps.

    Returns:
        scalar mean over the batch of ``Σ_l (1 − Σ_t α_tl)²``.
    """
    total = (alphas * mask.unsqueeze(-1).to(alphas.dtype)).sum(1)
    return ((1.0 - total) ** 2).sum(-1).mean()
