"""`python -m pipelines.caption`: smoke training run, then pipelines.caption.test and .generate on its checkpoint,
with a folder of good, unusual and broken images (each captioned or reported, none fatal)."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests._env import clean_env

ROOT = Path(__file__).resolve().parents[2]


def _run(*overrides: str, task: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines.caption`` (training, without loggers) or, given ``task``, ``pipelines.caption.<task>``."""
    env = clean_env()
    cmd = (
        [sys.executable, "-m", f"pipelines.caption.{task}"]
        if task
        else [sys.executable, "-m", "pipelines.caption", "logger=none"]
    )
    proc = subprocess.run(
        [*cmd, *overrides],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("caption")
    out = tmp / "train"
    _run("debug=smoke", f"hydra.run.dir={out}", f"paths.data_dir={tmp / 'data'}")
    return out


def test_smoke_training_writes_metrics_checkpoints_and_summary(smoke_run: Path) -> None:
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    for key in ("test/bleu1", "test/bleu4", "test/cider", "test/loss"):
        assert key in metrics and metrics[key] is not None
    for key in ("test/object_recall", "test/count_accuracy", "test/repeat_rate", "test/exact_set",
                "test/hallucination_rate"):  # fmt: skip
        assert 0.0 <= metrics[key] <= 1.0, key
        assert f"| {key} |" in (smoke_run / "summary.md").read_text()
    assert "test/colour_accuracy" in metrics  # NaN when no caption names a shape of its image
    assert 0.0 <= metrics["test/bleu4"] <= 1.0
    assert (smoke_run / "checkpoints" / "last.ckpt").exists()
    assert (smoke_run / "summary.md").read_text().startswith("# caption run")
    preds = [json.loads(line) for line in (smoke_run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 24 and all(len(p["references"]) == 5 for p in preds)
    config = json.loads((smoke_run / "config.json").read_text())  # the composed config, as ASR writes it
    assert "mode" not in config and config["data"]["name"] == "scenes"


def test_checkpoint_holds_vocab_and_transform(smoke_run: Path) -> None:
    import torch

    ckpt = torch.load(smoke_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hp = ckpt["hyper_parameters"]
    assert hp["vocab"]["itos"][:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert hp["transform"]["size"] == 64


def test_test_reproduces_metrics(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "test"
    _run(f"ckpt={smoke_run / 'checkpoints' / 'best.ckpt'}", "debug=smoke", f"hydra.run.dir={out}",
         f"paths.data_dir={smoke_run.parent / 'data'}", task="test")  # fmt: skip
    again = json.loads((out / "metrics.json").read_text())
    first = json.loads((smoke_run / "metrics.json").read_text())
    assert again["test/bleu4"] == pytest.approx(first["test/bleu4"], abs=1e-6)
    assert again["test/cider"] == pytest.approx(first["test/cider"], abs=1e-6)


def _image_folder(root: Path) -> dict[str, str]:
    """Write good/odd/bad images; returns name → "ok" | "error"."""
    rng = np.random.default_rng(0)
    (root / "nested" / "deeper").mkdir(parents=True)
    kinds: dict[str, str] = {}

    def save(name: str, img: Image.Image, kind: str = "ok", **kw: object) -> None:
        img.save(root / name, **kw)
        kinds[name] = kind

    rgb = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    save("rgb.png", rgb)
    save("nested/deeper/gray.jpg", rgb.convert("L"))
    save("rgba.png", rgb.convert("RGBA"))
    save("palette.gif", rgb.convert("P"))
    save("cmyk.jpg", rgb.convert("CMYK"))
    save("deep16.png", Image.fromarray((rng.integers(0, 65535, (20, 20))).astype(np.uint16)))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpg", rgb.resize((40, 20)), exif=exif.tobytes())
    save("one_pixel.png", Image.new("RGB", (1, 1), (200, 0, 0)))
    save('we<b>ird & "name".png', rgb)
    save("nested/bomb.png", Image.new("1", (12000, 12000)), kind="error")
    (root / "empty.jpg").write_bytes(b"")
    kinds["empty.jpg"] = "error"
    (root / "text.png").write_text("hello, not a PNG")
    kinds["text.png"] = "error"
    full = (root / "rgb.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 3])
    kinds["truncated.png"] = "error"
    (root / "notes.txt").write_text("ignored: not an image extension")
    return kinds


def test_generate_captions_every_image_and_reports_bad_ones(smoke_run: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    kinds = _image_folder(images)
    out = tmp_path / "gen"
    _run(f"ckpt={smoke_run / 'checkpoints' / 'last.ckpt'}", f"image_dir={images}", f"hydra.run.dir={out}",
         "generate.num_workers=0", task="generate")  # fmt: skip
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    by_name = {str(Path(r["path"]).relative_to(images)): r for r in rows}
    assert set(by_name) == set(kinds)
    for name, kind in kinds.items():
        row = by_name[name]
        if kind == "ok":
            assert "caption" in row and isinstance(row["caption"], str), row
        else:
            assert row.get("error"), row
    assert "empty" in by_name["empty.jpg"]["error"]
    assert (
        "decompression bomb" in by_name["nested/bomb.png"]["error"]
        or "too large" in by_name["nested/bomb.png"]["error"]
    )
    page = (out / "captions.html").read_text()
    assert "we<b>ird" not in page and html.escape('we<b>ird & "name".png') in page
    assert page.count('class="item"') == sum(k == "ok" for k in kinds.values())
    assert page.count("<figure>") > 0  # attention maps per word (the default decoder is attention)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generate/errors"] == sum(k == "error" for k in kinds.values())


def test_frozen_encoder_with_feature_cache_and_show_tell(tmp_path: Path) -> None:
    out, data = tmp_path / "run", tmp_path / "data"
    args = (
        "debug=smoke",
        "encoder.frozen=true",
        "data.feature_cache=true",
        "decoder=show_tell",
        f"paths.data_dir={data}",
    )
    _run(*args, f"hydra.run.dir={out}")
    assert "test/cider" in json.loads((out / "metrics.json").read_text())
    caches = sorted((data / "features").glob("*.npy"))
    assert len(caches) == 3  # train, val, test
    stamps = [p.stat().st_mtime_ns for p in caches]
    _run(*args, f"hydra.run.dir={tmp_path / 'again'}")  # same frozen weights (same seed): reused
    assert [p.stat().st_mtime_ns for p in sorted((data / "features").glob("*.npy"))] == stamps


def test_smoke_in_bf16_mixed_precision(smoke_run: Path) -> None:
    """What ``trainer.accelerator=gpu`` selects (bf16-mixed autocast), run on the CPU: training, beam search
    and the metrics work, and the checkpoint keeps float32 weights. One epoch of one batch: bf16 convolutions
    are slow on CPUs without bf16 units, and one step already goes through every autocast path."""
    import torch

    out = smoke_run.parent / "bf16"
    data = smoke_run.parent / "data"  # the smoke corpus of the fixture, reused
    _run(
        "debug=smoke",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        f"hydra.run.dir={out}",
        f"paths.data_dir={data}",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(
        metrics[k] is not None and 0.0 <= metrics[k] for k in ("test/bleu4", "test/cider", "test/loss")
    )
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_export_writes_the_encoder_and_decoder_step(smoke_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    out = tmp_path / "export_run"
    _run(f"ckpt={smoke_run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}", task="export")
    assert len(list((out / "export").glob("*.onnx"))) == 2 and (out / "export" / "metadata.json").is_file()
