"""``lstm_seq.training.evaluation.predict``: the outputs of ``predict_step`` per batch in loader order, computed
in eval mode without gradients or autocast; the module comes back on its device, in each submodule's mode and
with its trainer; several loaders in a list/tuple/dict are refused."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from lstm_seq.training.evaluation import evaluation_trainer, predict
from tests.training._tiny import Points, collate

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class Net(pl.LightningModule):
    """An MLP with dropout (so eval mode shows in the outputs); ``predict_step`` records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1))
        self.calls: list[dict[str, Any]] = []
        self.fail_at: int | None = None

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any] | None:
        self.calls.append({
            "training": self.training, "grad": torch.is_grad_enabled(), "device": batch["x"].device,
            "autocast": torch.is_autocast_enabled(batch["x"].device.type), "param": self.net[0].weight.device,
        })  # fmt: skip
        if batch_idx == self.fail_at:
            raise RuntimeError("step failed")
        if batch_idx == 1:
            return None  # e.g. a batch the loader could not read
        return {"ids": batch["ids"], "y": self.net(batch["x"]).squeeze(-1)}


def _loader() -> DataLoader:
    return DataLoader(Points(10), batch_size=3, shuffle=False, collate_fn=collate)


def test_predict_returns_each_batchs_output_in_loader_order() -> None:
    m = Net()
    out = predict(m, _loader(), "cpu")
    assert len(out) == 4 and out[1] is None
    assert [o["ids"] for o in out if o is not None] == [[0, 1, 2], [6, 7, 8], [9]]
    m.eval()
    with torch.no_grad():
        for o in (o for o in out if o is not None):
            expected = m.net(Points(10).x[o["ids"]]).squeeze(-1)
            assert torch.equal(o["y"], expected)  # eval mode: no dropout, same forward
            assert not o["y"].requires_grad
    assert all(not c["training"] and not c["grad"] and not c["autocast"] for c in m.calls)


def test_predict_takes_any_iterable_of_batches_but_one_loader_only() -> None:
    batches = [collate([Points(4)[i] for i in (0, 1)]), collate([Points(4)[i] for i in (2, 3)])]
    out = predict(Net(), (b for b in batches))  # a generator is one stream of batches
    assert [o["ids"] if o else None for o in out] == [[0, 1], None]
    for several in ([_loader()], (_loader(), _loader()), {"a": _loader()}, batches):
        with pytest.raises(TypeError, match=r"one DataLoader .* several loaders"):
            predict(Net(), several)
    with pytest.raises(TypeError, match="one DataLoader"):
        predict(Net(), 3)  # type: ignore[arg-type]


def test_the_module_comes_back_in_its_modes_with_its_trainer() -> None:
    m = Net().train()
    m.net[1].eval()  # mixed modes are restored submodule by submodule
    fit = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    m.trainer = fit
    predict(m, _loader())
    assert m.training and m.net[0].training and not m.net[1].training
    assert m.trainer is fit
    m.fail_at = 2
    with pytest.raises(RuntimeError, match="step failed"):
        predict(m, _loader())
    assert m.training and not m.net[1].training and m.trainer is fit


def test_the_evaluation_trainer_is_one_device_in_float32() -> None:
    t = evaluation_trainer("cpu")
    assert t.precision == "32-true" and t.num_devices == 1 and t.logger is None
    assert not t.checkpoint_callbacks and t.progress_bar_callback is None
    assert t.predict_loop.inference_mode is False  # torch.no_grad: the outputs are ordinary tensors
    with pytest.raises(ValueError, match="evaluation runs on"):
        evaluation_trainer("meta")


@pytest.mark.gpu
@needs_cuda
def test_predict_on_the_gpu_returns_cpu_outputs_and_the_module_where_it_was() -> None:
    m = Net()
    out = predict(m, _loader(), "cuda")
    assert all(c["device"].type == "cuda" and c["param"].type == "cuda" for c in m.calls)
    assert all(o["y"].device.type == "cpu" for o in out if o is not None)
    assert m.net[0].weight.device.type == "cpu"
    m.cuda()
    predict(m, _loader(), "cpu")
    assert m.calls[-1]["param"].type == "cpu" and m.net[0].weight.device.type == "cuda"
