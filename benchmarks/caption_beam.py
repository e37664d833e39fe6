"""Caption generation throughput: batched beam search against one image at a time.

A captioner with random weights (the amount of work per image does not depend on training: every
hypothesis runs to ``--max-len`` unless it emits ``<end>``) captions ``--images`` random images,
first one image per call, then in batches of each ``--batch-sizes``. Before timing, the batched
captions are checked against the one-at-a-time captions in the precision that is timed (a caption
must not depend on its batch): in fp32 they must be equal; in bf16 a caption may differ only where
its score is within bf16 rounding (``BF16_TIE``, relative) of the one-at-a-time caption's, i.e. a
tie that rounding decided, and the bf16 scores must agree with fp32 ones to the same tolerance.
Prints a table and writes ``benchmarks/results/<date>-<device>-caption-beam.json``.

    python -m benchmarks.caption_beam                                  # GPU if present, else CPU
    python -m benchmarks.caption_beam --encoder resnet50 --image-size 224 --beam 5 --batch-sizes 32 128
    python -m benchmarks.caption_beam --quick                          # a smoke run on CPU

Cases in the JSON: ``{"name": "beam5-B32", "batch": 32, "single_ms_per_image": …,
"batched_ms_per_image": …, "speedup": single / batched, "images_per_s": …}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.lstm_speed import device_name, write_result
from lstm_seq.vision.data.images import ImageTransform
from lstm_seq.vision.module import CaptionModule
from lstm_seq.vision.vocab import Vocabulary


def build_model(args: argparse.Namespace, device: torch.device) -> CaptionModule:
    """A captioner of the configured size with a ``--vocab``-word vocabulary and random weights."""
    words = [f"w{i}" for i in range(args.vocab)]
    vocab = Vocabulary.build([" ".join(words)])
    transform = ImageTransform(args.image_size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    encoder = {"name": args.encoder, "weights": None, "output_stride": args.output_stride, "frozen": True}
    decoder = {"variant": args.decoder, "hidden_size": args.hidden, "embed_dim": args.embed}
    if args.decoder == "attention":
        decoder["attention_dim"] = args.embed
    search = {"beam_size": args.beam, "max_len": args.max_len}
    model = CaptionModule(vocab.to_dict(), transform.to_dict(), encoder, decoder, search)
    return model.to(device).eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# bf16 keeps 8 bits of mantissa: two captions whose scores differ by less than this fraction are a tie
BF16_TIE = 1e-2


def caption_all(
    model: CaptionModule, images: torch.Tensor, batch: int, precision: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (N, max_len) and scores (N,) (float32) for every image, ``batch`` images per generate() call."""
    tokens, scores = [], []
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        for i in range(0, images.shape[0], batch):
            out = model.generate(images[i : i + batch])
            tokens.append(out.tokens)
            scores.append(out.scores.float())
    return torch.cat(tokens), torch.cat(scores)


def verify(
    model: CaptionModule, images: torch.Tensor, batch_sizes: list[int], precision: str
) -> dict[str, object]:
    """Check the batched captions against the one-at-a-time captions in ``precision`` (module docs); raise
    SystemExit naming the first batch size that fails. Returns what was found, for the result file."""
    n = images.shape[0]
    single_tokens, single_scores = caption_all(model, images, 1, precision)
    found: dict[str, object] = {"precision": precision}
    if precision == "bf16":
        _, fp32_scores = caption_all(model, images, 1, "fp32")
        gap = ((single_scores - fp32_scores).abs() / fp32_scores.abs()).max().item()
        found["bf16_vs_fp32_score_rel_gap"] = round(gap, 5)
        if gap > BF16_TIE:
            raise SystemExit(f"bf16 scores differ from fp32 by {gap:.3g} (relative), more than rounding")
    for b in batch_sizes:
        tokens, scores = caption_all(model, images, b, precision)
        differ = (tokens != single_tokens).any(1)
        if precision == "fp32":
            bad = differ
        else:
            bad = differ & ((scores - single_scores).abs() > BF16_TIE * single_scores.abs())
        if bad.any():
            raise SystemExit(
                f"batch {b}: {int(bad.sum())}/{n} captions differ from the one-at-a-time captions ({precision})"
            )
        found[f"differing_ties_B{b}"] = int(differ.sum())
    return found


def timed(fn, device: torch.device, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall milliseconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=None, help="images per measurement (256 GPU, 32 CPU)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--output-stride", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--decoder", default="attention", choices=["attention", "show_tell"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--precision", default=None, choices=["fp32", "bf16"], help="bf16 on GPU by default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if args.quick:
        args.images, args.image_size, args.vocab, args.hidden, args.embed = 8, 64, 200, 64, 32
        args.max_len, args.repeats = 8, 1
        args.batch_sizes = args.batch_sizes or [8]
    n = args.images or (256 if gpu else 32)
    batch_sizes = args.batch_sizes or ([8, 32, 128] if gpu else [8, 32])
    precision = args.precision = args.precision or ("bf16" if gpu else "fp32")
    torch.manual_seed(0)
    model = build_model(args, device)
    images = torch.randn(n, 3, args.image_size, args.image_size, device=device)

    verified = verify(model, images, batch_sizes, precision)
    print("verified:", verified)

    name = device_name(device)
    print(
        f"device: {name} | torch {torch.__version__} | {args.encoder} {args.image_size}px, {args.decoder} "
        f"H{args.hidden}, vocab {args.vocab}, beam {args.beam}, max_len {args.max_len}, {precision}, "
        f"{n} images, median of {args.repeats}"
    )
    single_ms = timed(lambda: caption_all(model, images, 1, precision), device, args.repeats) / n
    print(f"{'case':<14}{'batch':>6}{'ms/image':>10}{'images/s':>10}{'speedup':>9}")
    print(f"{'single':<14}{1:>6}{single_ms:>10.2f}{1e3 / single_ms:>10.1f}{1.0:>8.2f}x")
    rows = []
    for b in batch_sizes:
        ms = timed(lambda b=b: caption_all(model, images, b, precision), device, args.repeats) / n
        case = f"beam{args.beam}-B{b}"
        print(f"{case:<14}{b:>6}{ms:>10.2f}{1e3 / ms:>10.1f}{single_ms / ms:>8.2f}x", flush=True)
        rows.append(
            {
                "name": case,
                "batch": b,
                "dtype": precision,
                "single_ms_per_image": round(single_ms, 4),
                "batched_ms_per_image": round(ms, 4),
                "speedup": round(single_ms / ms, 3),
                "images_per_s": round(1e3 / ms, 2),
            }
        )
    config = {k: v for k, v in vars(args).items() if k != "out"}
    write_result(
        args.out,
        name,
        "-caption-beam" + ("-quick" if args.quick else ""),
        config=config,
        verified=verified,
        cases=rows,
    )


if __name__ == "__main__":
    main()
