"""Do the captioner's encoder features say which shape and which colour each object is, also for colour–shape
pairs training never showed? A linear probe on the features at each object's centre.

For every object of a scene image, the encoder grid (B, L, C) is read at the object's centre (bilinear, the
grid is h × w over the image). Two multinomial logistic regressions on those vectors (standardised with the
training statistics, L2 1e-3, L-BFGS) are fitted on the training split's objects (seen colour–shape pairs
only) and scored on:

- ``train``: the objects they were fitted on;
- ``val``: the validation split's objects (seen pairs, unseen images);
- ``held_out_pairs``: the test split's objects whose colour–shape pair never occurs in training
  (:func:`lstm_seq.vision.data.synth.held_out_pairs`) — a shape probe near chance there means the encoder
  learnt colour-specific shape detectors.

    python -m benchmarks.encoder_probe --ckpt outputs/DATE/TIME/checkpoints/best.ckpt
    python -m benchmarks.encoder_probe --ckpt PATH --smoke     # the smoke corpus (debug=smoke)

Writes ``benchmarks/results/<date>-<device>-encoder-probe[-TAG].json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.vision.data.corpus import load_corpus
from lstm_seq.vision.data.datasets import CaptionDataset
from lstm_seq.vision.data.synth import COLOURS, SHAPES, held_out_pairs
from lstm_seq.vision.module import CaptionModule

RESULTS = Path(__file__).resolve().parent / "results"


@torch.no_grad()
def object_features(
    model: CaptionModule, images: torch.Tensor, objects: list[list[dict[str, Any]]], batch: int = 128
) -> torch.Tensor:
    """(N_objects, C) encoder features at each object's centre, objects in image order.

    Args:
        images: (B, 3, S, S) normalised; objects: each image's records with ``x``, ``y`` in [0, 1].
    """
    feats: list[torch.Tensor] = []
    for i in range(0, images.shape[0], batch):
        grid, _ = model.features(images[i : i + batch])  # (b, L, C), L = h·w row-major
        side = round(grid.shape[1] ** 0.5)
        fmap = grid.transpose(1, 2).unflatten(2, (side, side))  # (b, C, h, w)
        for j, objs in enumerate(objects[i : i + batch]):
            pts = torch.tensor([[2 * o["x"] - 1, 2 * o["y"] - 1] for o in objs], dtype=fmap.dtype)
            at = F.grid_sample(fmap[j : j + 1], pts.view(1, 1, -1, 2), align_corners=False)  # (1, C, 1, n)
            feats.append(at[0, :, 0].T)
    return torch.cat(feats)


def fit_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-3, steps: int = 200):
    """A multinomial logistic regression fitted with L-BFGS; returns ``predict(x) -> labels``."""
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], n_classes, dtype=x.dtype)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")
    z = (x - mean) / std

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(lin(z), y) + l2 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda q: lin((q - mean) / std).argmax(-1)


def split_objects(corpus: Any, split: str, model: CaptionModule) -> tuple[torch.Tensor, list[dict]]:
    items = corpus.split(split)
    ds = CaptionDataset(items, model.vocab, model.transform, images=corpus.images)
    images = torch.stack([ds.load(i) for i in range(len(ds))])
    objects = [it.extra["objects"] for it in items]
    return object_features(model, images, objects), [o for objs in objects for o in objs]


def probe(model: CaptionModule, corpus: Any) -> dict[str, dict[str, float | int]]:
    """Colour and shape probe accuracies on train / val / held-out-pair objects (and the object counts)."""
    held = held_out_pairs()
    data = {s: split_objects(corpus, s, model) for s in ("train", "val", "test")}
    x_test, o_test = data["test"]
    keep = torch.tensor([(o["colour"], o["shape"]) in held for o in o_test])
    sets = {
        "train": data["train"],
        "val": data["val"],
        "held_out_pairs": (x_test[keep], [o for o, k in zip(o_test, keep.tolist(), strict=True) if k]),
    }
    out: dict[str, dict[str, float | int]] = {s: {"n": len(objs)} for s, (_, objs) in sets.items()}
    for attr, names in (("colour", list(COLOURS)), ("shape", list(SHAPES))):
        x_tr, o_tr = sets["train"]
        y_tr = torch.tensor([names.index(o[attr]) for o in o_tr])
        predict = fit_probe(x_tr.double(), y_tr, len(names))
        for s, (x, objs) in sets.items():
            y = torch.tensor([names.index(o[attr]) for o in objs])
            out[s][attr] = float((predict(x.double()) == y).double().mean())
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="a captioning checkpoint (best.ckpt / last.ckpt)")
    parser.add_argument(
        "--data-dir", default="data", help="where the scene corpus is cached (paths.data_dir)"
    )
    parser.add_argument("--smoke", action="store_true", help="the smoke corpus (debug=smoke)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = CaptionModule.load(args.ckpt).eval()
    corpus = load_corpus("scenes", args.data_dir, smoke=args.smoke, image_size=model.transform.size)
    res = probe(model, corpus)
    print(f"checkpoint {args.ckpt}")
    print(f"{'objects':16s} {'n':>6s} {'colour':>7s} {'shape':>7s}")
    for s, r in res.items():
        print(f"{s:16s} {r['n']:6d} {r['colour']:7.3f} {r['shape']:7.3f}")
    fields = {"checkpoint": str(args.ckpt), "encoder": dict(model.hparams["encoder"]), "probe": res}
    suffix = "-encoder-probe" + (f"-{args.tag}" if args.tag else "")
    write_result(Path(args.out_dir), device_name(torch.device("cpu")), suffix, **fields)
    return fields


if __name__ == "__main__":
    main()
