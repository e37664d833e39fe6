"""The captioner's runs — train, test, generate — as functions of plain settings.

``python -m pipelines.caption`` reads its Hydra config and calls these; ``data`` is the ``conf/data`` node as a
plain dict (``batch_size``, ``num_workers``, ``train_captions``, ``max_len``, ``max_pixels``, ``feature_cache``,
``cache_dir``, ``min_freq``, ``image_size``, ``mean``, ``std``, ``smoke``, ``name``, ``augment``). Every output
lands in the run folder ``out`` and is written atomically (:mod:`lstm_seq.outputs`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstm_seq.metrics.caption import caption_metrics, java_metrics, novel_pair_recall, object_metrics
from lstm_seq.outputs import write_jsonl_atomic, write_metrics, write_text_atomic
from lstm_seq.vision.data.augment import ImageAugment
from lstm_seq.vision.data.corpus import Corpus
from lstm_seq.vision.data.datamodule import CaptionDataModule
from lstm_seq.vision.data.images import DEFAULT_MAX_PIXELS, ImageTransform
from lstm_seq.vision.decoding.evaluate import caption_split
from lstm_seq.vision.generate import caption_folder
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary

log = logging.getLogger(__name__)


def build_model(
    corpus: Corpus,
    data: Mapping[str, Any],
    encoder: Mapping[str, Any],
    decoder: Mapping[str, Any],
    model: Mapping[str, Any],
    optim: Mapping[str, Any] | None = None,
) -> CaptionModule:
    """A new captioner whose vocabulary (``min_freq``) comes from the training captions and whose input
    transform (``image_size``, ``mean``, ``std``) is stored with it; ``model`` and ``optim`` are its training,
    search and optimiser settings (None: the captioning defaults)."""
    vocab = Vocabulary.build((c for it in corpus.split("train") for c in it.captions), data["min_freq"])
    transform = ImageTransform(data["image_size"], tuple(data["mean"]), tuple(data["std"]))
    return CaptionModule(
        vocab.to_dict(), transform.to_dict(), dict(encoder), dict(decoder), dict(model), dict(optim or {})
    )


def check_inputs(dm: CaptionDataModule) -> dict[str, int]:
    """Before training: the train, val and test datasets (and their feature caches), so that an empty split,
    the test one too, fails now, not after training. Returns the images per split."""
    return {split: len(dm.dataset(split)) for split in ("train", "val", "test")}


def datamodule(
    model: CaptionModule,
    corpus: Corpus,
    data: Mapping[str, Any],
    seed: int = 0,
    cache_dir: Path | None = None,
) -> CaptionDataModule:
    """Loaders for ``corpus`` with the model's own vocabulary and image transform (from its checkpoint when
    testing, so the data can never drift from what the model was trained on) and the loading keys of ``data``
    (:class:`~lstm_seq.vision.data.datasets.LoaderConfig`): ``data["augment"]`` augments the training split;
    with ``data["feature_cache"]`` and a frozen encoder the encoder's features are computed once into
    ``cache_dir`` and reused."""
    cached = data.get("feature_cache") and model.encoder.frozen and cache_dir is not None
    return CaptionDataModule(
        corpus,
        model.vocab,
        model.transform,
        batch_size=data["batch_size"],
        num_workers=data["num_workers"],
        train_captions=data["train_captions"],
        max_len=data["max_len"],
        max_pixels=data.get("max_pixels", DEFAULT_MAX_PIXELS),
        augment=ImageAugment(**data["augment"]) if data.get("augment") else None,
        seed=seed,
        encoder=model.encoder if cached else None,
        cache_dir=cache_dir,
    )


def evaluate(
    model: CaptionModule,
    dm: CaptionDataModule,
    out: Path,
    smoke: bool = False,
    device: str = "cpu",
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Test ``model`` on ``dm``'s test split: BLEU-1..4 and CIDEr-D, METEOR/SPICE where Java runs (not with
    ``smoke``); where the corpus knows its images' objects (:class:`~lstm_seq.vision.data.corpus.Composition`,
    the embedded scenes) ``test/novel_pair_recall`` and the object figures of
    :func:`~lstm_seq.metrics.caption.object_metrics` (``test/object_recall``, ``test/exact_set``,
    ``test/count_accuracy``, ``test/repeat_rate``, ``test/colour_accuracy``, ``test/hallucination_rate``);
    the image files not found (``data/<split>/missing_images``). Writes metrics.json and predictions.jsonl.
    Returns the metrics and the predictions (``{"id", "caption", "references"}`` per image)."""
    said = caption_split(model, dm.test_dataloader(), device=device)
    metrics = caption_metrics(said.hyps, said.refs, prefix="test/") if said.hyps else {}
    if said.loss is not None:
        metrics["test/loss"] = said.loss
    extra, why = {}, "METEOR/SPICE skipped in smoke mode"
    if not smoke:
        extra, why = java_metrics(said.hyps, said.refs, prefix="test/")
    if why:
        log.info(why)
    metrics.update(extra)
    metrics.update(dm.corpus.report())  # image files not found, per split
    known = dm.corpus.composition
    if known is not None:  # composition: how often the held-out colour–shape pairs are named
        objects = {it.image_id: it.extra["objects"] for it in dm.corpus.split("test")}
        objs = [objects[i] for i in said.ids]
        metrics["test/novel_pair_recall"] = novel_pair_recall(said.hyps, objs, known.held_out)
        # each object named once, the right number of objects, no phrase said more often than it is there
        metrics.update(object_metrics(said.hyps, objs, known.colours, known.shapes, prefix="test/"))
    predictions = [
        {"id": i, "caption": h, "references": r}
        for i, h, r in zip(said.ids, said.hyps, said.refs, strict=True)
    ]
    write_jsonl_atomic(out / "predictions.jsonl", predictions)
    write_metrics(out, metrics)
    return metrics, predictions


def generate(
    model: CaptionModule, image_dir: Path, out: Path, settings: Mapping[str, Any], device: str = "cpu"
) -> dict[str, Any]:
    """``pipelines.caption.generate``: every image under ``image_dir`` → ``<out>/captions.jsonl`` and ``captions.html`` (a file
    that cannot be read gets an ``error`` row; the run goes on); ``settings``: the ``conf/generate`` node
    (``batch_size``, ``num_workers``, ``max_pixels``, ``thumbnail``)."""
    metrics = caption_folder(
        model.to(device), image_dir, out, settings["batch_size"], settings["num_workers"], None,
        settings["max_pixels"], settings["thumbnail"],
    )  # fmt: skip
    write_metrics(out, metrics)
    print(
        f"captioned {metrics['generate/captioned']}/{metrics['generate/images']} images"
        f" ({metrics['generate/errors']} errors) → {out / 'captions.jsonl'}, {out / 'captions.html'}"
    )
    return metrics


def write_summary(out: Path, title: str, config_yaml: str, metrics: Mapping[str, float],
                  predictions: list[dict[str, Any]], best: str, samples: int = 10) -> None:  # fmt: skip
    """``<out>/summary.md``: the config, a metrics table, the best checkpoint and ``samples`` test captions
    next to a reference."""
    lines = [f"# {title}", "", "```yaml", config_yaml, "```", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    lines += ["", f"best checkpoint: {best}", "", "sample test captions:"]
    lines += [f"- {p['caption']}  (ref: {p['references'][0]})" for p in predictions[:samples]]
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")


def export(module: CaptionModule, out: Path) -> dict[str, int]:
    """``pipelines.caption.export``: ONNX files of the model with their ``metadata.json`` into ``<out>/export``
    (:func:`lstm_seq.vision.export.export_captioner`); records ``export/files`` in metrics.json."""
    from lstm_seq.vision.export import export_captioner  # the exporter's imports only when exporting

    return export_captioner(module, out / "export").record(out)
