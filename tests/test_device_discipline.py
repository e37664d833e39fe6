"""Every tensor that a training, evaluation or decoding step creates names its device.

A factory call without ``device=`` (``torch.zeros(n)``, ``torch.arange(t)``, ``torch.tensor(x)``) makes a CPU
tensor; on a GPU it then meets CUDA tensors and the run fails, but on this CPU-only machine nothing would show
it. So these tests run the real steps of both pipelines' modules and of every LSTM backend under a
TorchFunctionMode that records each such call made from ``lstm_seq`` code, and compare with the short list of
calls that are CPU-side on purpose.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from lstm_seq import LSTM
from lstm_seq.audio.data.datasets import Batch
from lstm_seq.audio.decoding.decode import BeamConfig, greedy_decode
from lstm_seq.audio.decoding.setup import DecodingSetup
from lstm_seq.audio.module import ASRModule
from lstm_seq.vision.data.datasets import collate_captions
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

# lengths are validated and kept on the CPU on purpose (packing and the reverse index need them there)
CPU_ON_PURPOSE = {("lstm_seq/lstm.py", "_check_lengths")}


class ImplicitDevice(TorchFunctionMode):
    """Records ``(file, function, line)`` of each tensor factory called from lstm_seq without ``device=``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._factories = _device_constructors()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in self._factories and kwargs.get("device") is None:
            for frame in reversed(traceback.extract_stack()[:-1]):
                if "/lstm_seq/" in frame.filename:
                    where = "lstm_seq/" + frame.filename.rsplit("/lstm_seq/", 1)[1]
                    self.calls[(where, frame.name, (frame.line or "").strip())] += 1
                    break
        return func(*args, **kwargs)


def implicit_calls(step: Callable[[], Any]) -> list[tuple[str, str, str]]:
    with ImplicitDevice() as mode:
        step()
    return sorted(c for c in mode.calls if c[:2] not in CPU_ON_PURPOSE)


def test_the_detector_sees_a_factory_without_device() -> None:
    """Positive control: the lengths check builds its CPU tensor with ``torch.as_tensor(lengths)``."""
    with ImplicitDevice() as mode:
        LSTM._check_lengths([3, 2], 3, 2)
        torch.zeros(2)  # called from this file, not from lstm_seq: not recorded
    assert [c[:2] for c in mode.calls] == [("lstm_seq/lstm.py", "_check_lengths")]


@pytest.mark.parametrize("backend", ["reference", "fused", "layerwise"])
def test_lstm_backends(backend: str) -> None:
    lstm = LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True, backend=backend)
    cell = LSTM(6, 5, backend=backend)
    x = torch.randn(3, 7, 6, requires_grad=True)

    def step() -> None:
        out, _ = lstm(x, lengths=torch.tensor([7, 4, 2]))
        out.sum().backward()
        lstm(x)
        cell.step(x[:, 0], None)

    assert implicit_calls(step) == []


def test_layer_norm_lstm() -> None:
    for backend in ("reference", "ln_kernel"):
        lstm = LSTM(6, 5, num_layers=2, layer_norm=True, backend=backend)
        x = torch.randn(7, 3, 6, requires_grad=True)
        assert implicit_calls(lambda lstm=lstm, x=x: lstm(x, lengths=[7, 5, 1])[0].sum().backward()) == []


def test_asr_training_and_decoding_steps(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = {"freq_masks": 2, "time_masks": 2, "freq_width": 5, "time_width": 10}
    m = ASRModule(model={"hidden_size": 8, "num_layers": 2, "conv_channels": 2}, specaugment=spec)
    wave, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    batch = Batch(
        wave, lengths, torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2]), ["abc", "de"], ["a", "b"]
    )

    def step() -> None:
        m.train()
        m.training_step(batch, 0).backward()
        m.eval()
        with torch.no_grad():
            log_probs, out_lengths = m(wave, lengths)
            m.predict_step(batch, 0)  # the test's step (trainer.predict)
        greedy_decode(log_probs, out_lengths, m.vocab)
        beam(log_probs, out_lengths)

    beam = DecodingSetup.from_texts(["abc de", "de abc"]).decoder(
        m.vocab, BeamConfig(beam_size=4), tmp_path
    )  # built on the CPU
    assert implicit_calls(step) == []


@pytest.mark.parametrize("variant", ["attention", "show_tell"])
def test_caption_training_and_generation_steps(variant: str) -> None:
    torch.manual_seed(0)
    captions = ["a red circle", "a blue square left of a red circle", "there is a red circle"]
    vocab = Vocabulary.build(captions, 1)
    decoder = {"variant": variant, "embed_dim": 8, "hidden_size": 16, "num_layers": 1, "dropout": 0.0}
    if variant == "attention":
        decoder["attention_dim"] = 8
    transform = ImageTransform(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    m = CaptionModule(vocab.to_dict(), transform.to_dict(), {"name": "resnet18", "output_stride": 16}, decoder,
                      {"sampling_max": 0.5, "word_dropout": 0.2})  # fmt: skip
    items = [
        {"image": torch.randn(3, 64, 64), "tokens": [vocab.encode(c) for c in captions[i:]], "refs": captions[i:],
         "id": str(i), "path": f"{i}.png"}
        for i in range(2)
    ]  # fmt: skip
    batch = collate_captions(items, pad_id=vocab.pad_id)

    def step() -> None:
        m.train()
        m.training_step(batch, 0).backward()
        m.eval()
        with torch.no_grad():
            for beam in (1, 3):
                m.generate(batch["images"], beam_size=beam)
            m.predict_step(batch, 0)  # the test's step (trainer.predict)

    assert implicit_calls(step) == []


# ---------------------------------------------------------------------------------------- host synchronisations
# Tensor methods that make the host wait for the GPU when their tensor lives there
_SYNCING = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.__bool__, torch.Tensor.__int__,
    torch.Tensor.__float__, torch.Tensor.nonzero, torch.nonzero, torch.Tensor.numpy,
}  # fmt: skip


class HostReads(TorchFunctionMode):
    """Records ``(file, function, line)`` of each call from lstm_seq that reads a tensor back to the host
    (``item``, ``tolist``, ``cpu``, ``bool``/``int``/``float``, ``nonzero``, ``numpy``, indexing with a boolean
    mask): on a GPU each one waits until every queued kernel has run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        masked = func is torch.Tensor.__getitem__ and any(
            isinstance(a, torch.Tensor) and a.dtype == torch.bool
            for a in (args[1] if isinstance(args[1], tuple) else (args[1],))
        )
        if func in _SYNCING or masked:
            for frame in reversed(traceback.extract_stack()[:-1]):
                if "/lstm_seq/" in frame.filename:
                    where = "lstm_seq/" + frame.filename.rsplit("/lstm_seq/", 1)[1]
                    self.calls[(where, frame.name, (frame.line or "").strip())] += 1
                    break
        return func(*args, **kwargs)


# The reads of one ASR training step, each once: the lengths the LSTM packs with (on the CPU by design, so
# the one real wait), the CTC feasibility flags (the second), and what is read from those CPU copies (no wait).
ASR_STEP_READS = {
    ("lstm_seq/audio/model.py", "forward", "y, _ = self.lstm(x, lengths=lengths.cpu())  # (B, T', D·H)"),
    (
        "lstm_seq/audio/module.py",
        "ctc_loss",
        "ok = ctc_feasible(out_lengths, batch.targets, batch.target_lengths).cpu()",
    ),
}
# reads of tensors that are on the CPU by design (copies made by the reads above): no wait on a GPU
# (packing reads its CPU lengths and batch sizes; the loss reads its CPU copy of the feasibility flags)
CPU_SIDE = {("lstm_seq/lstm.py", "_check_lengths"), ("lstm_seq/fused.py", "run_lengths")}
CPU_SIDE_LINES = {("lstm_seq/audio/module.py", "ctc_loss", "n_bad = int((~ok).sum())")}


def test_asr_training_step_reads_the_gpu_twice() -> None:
    torch.manual_seed(0)
    m = ASRModule(model={"hidden_size": 8, "num_layers": 2, "conv_channels": 2})
    wave, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    batch = Batch(
        wave, lengths, torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2]), ["abc", "de"], ["a", "b"]
    )
    m.train()
    with HostReads() as mode:
        m.training_step(batch, 0).backward()
    waits = {c for c in mode.calls if c[:2] not in CPU_SIDE and c not in CPU_SIDE_LINES}
    assert waits == ASR_STEP_READS, sorted(waits)
    assert all(mode.calls[c] == 1 for c in ASR_STEP_READS)


@pytest.mark.parametrize("variant", ["attention", "show_tell"])
def test_caption_training_step_never_reads_the_gpu(variant: str) -> None:
    torch.manual_seed(0)
    captions = ["a red circle", "a blue square left of a red circle", "there is a red circle"]
    vocab = Vocabulary.build(captions, 1)
    decoder = {"variant": variant, "embed_dim": 8, "hidden_size": 16, "num_layers": 1, "dropout": 0.0}
    if variant == "attention":
        decoder["attention_dim"] = 8
    transform = ImageTransform(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    m = CaptionModule(vocab.to_dict(), transform.to_dict(), {"name": "resnet18", "output_stride": 16}, decoder,
                      {"sampling_max": 0.5, "word_dropout": 0.2})  # fmt: skip
    items = [
        {"image": torch.randn(3, 64, 64), "tokens": [vocab.encode(c) for c in captions[i:]], "refs": captions[i:],
         "id": str(i), "path": f"{i}.png"}
        for i in range(2)
    ]  # fmt: skip
    batch = collate_captions(items, pad_id=vocab.pad_id)
    m.train()
    with HostReads() as mode:
        m.training_step(batch, 0).backward()
    assert sorted(mode.calls) == []
