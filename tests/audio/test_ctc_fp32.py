"""The CTC loss of the ASR module runs in float32 with autocast off, whatever precision the model runs in
(docs/asr.md: "CTC is computed in float32 outside autocast"): here the acoustic model runs under CPU bf16 autocast,
as ``trainer.precision=bf16-mixed`` runs it, and every call of ``F.ctc_loss`` is recorded."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.module import ASRModule

TEXTS = ["go left", "turn right at the red door"]


class _CTCCalls(TorchFunctionMode):
    """Records the log-prob dtype and whether autocast was on at each ``F.ctc_loss`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.dtype, bool]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is F.ctc_loss:
            self.calls.append((args[0].dtype, torch.is_autocast_enabled("cpu")))
        return func(*args, **(kwargs or {}))


def test_ctc_is_float32_outside_autocast_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    m = ASRModule(model={"hidden_size": 16, "num_layers": 1, "conv_channels": 4}).train()
    targets = [torch.tensor(m.vocab.encode(t)) for t in TEXTS]
    batch = Batch(
        wave=torch.randn(2, 32000) * 0.1,
        wave_lengths=torch.tensor([32000, 24000]),
        targets=torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
        target_lengths=torch.tensor([len(t) for t in targets]),
        texts=TEXTS,
        paths=["a.wav", "b.wav"],
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats, frames = m.featurizer(batch.wave, batch.wave_lengths)
        logits, lengths = m.acoustic(feats, frames)
        assert logits.dtype == torch.bfloat16  # the case: the model itself runs in bf16
        log_probs = logits.log_softmax(-1)  # bf16 in: the loss must not be computed in it
        with _CTCCalls() as rec:
            loss = m.ctc_loss(log_probs, lengths, batch)
    assert loss is not None and loss.dtype == torch.float32
    assert rec.calls == [(torch.float32, False)]
    args = (batch.targets, lengths, batch.target_lengths)
    want = F.ctc_loss(log_probs.double().transpose(0, 1), *args, blank=m.vocab.blank, zero_infinity=True)
    assert abs(loss.item() - want.item()) <= 1e-5 * abs(want.item())
