"""Time lstm_seq.LSTM against torch.nn.LSTM on named shapes, forward and forward+backward.

Each case first checks that both modules (same weights) give the same outputs, then times them
side by side: warm-up, then the median of ``--repeats`` runs (CUDA events on a GPU,
``perf_counter`` on CPU). Prints a table and writes ``benchmarks/results/<date>-<device>.json``
(schema in benchmarks/RESULTS.md).

    python benchmarks/lstm_speed.py                       # every shape; fp32 (+ bf16 on a GPU)
    python benchmarks/lstm_speed.py --shapes cap-dec 1layer --repeats 5 --with-reference
    python benchmarks/lstm_speed.py --quick               # shapes cut down 8x in T and B (a smoke run)
    python benchmarks/lstm_speed.py --also fused layerwise --lengths   # more backends; padded batches too

``--lengths`` adds a "<shape>+len" case per shape: lengths drawn in [T/2, T]; ours gets ``lengths=``,
nn.LSTM gets the same batch packed (the packing is inside the timed region for both, as in use).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm_seq


@dataclass(frozen=True)
class Shape:
    """One benchmark case: batch B, steps T, input I, hidden H, layers L, bidirectional."""

    B: int
    T: int
    I: int
    H: int
    L: int = 1
    bidirectional: bool = False
    layer_norm: bool = False


SHAPES: dict[str, Shape] = {
    "asr-enc": Shape(32, 400, 320, 512, 4, True),
    "asr-enc-B8": Shape(8, 400, 320, 512, 4, True),
    "asr-enc-B128": Shape(128, 400, 320, 512, 4, True),
    "cap-dec": Shape(128, 20, 768, 512),
    "1layer": Shape(32, 400, 512, 512),
    # LayerNorm LSTM (ours) against a plain nn.LSTM of the same shape: nn.LSTM has no LayerNorm.
    "ln-1layer": Shape(32, 400, 512, 512, layer_norm=True),
    "ln-asr-enc": Shape(32, 400, 320, 512, 4, True, layer_norm=True),
}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    return f"CPU {proc} ({torch.get_num_threads()} threads)"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def write_result(out_dir: Path, device: str, suffix: str, **fields: object) -> Path:
    """Write ``<out_dir>/<date>-<device><suffix>.json`` holding the date, device, torch and cuDNN
    versions, then ``fields`` (``cases`` among them); print and return its path."""
    result = {
        "date": dt.date.today().isoformat(),
        "device": device,
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        **fields,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result['date']}-{slug(device)}{suffix}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def build(shape: Shape, device: torch.device, backend: str) -> tuple[nn.LSTM, lstm_seq.LSTM]:
    kw = {"num_layers": shape.L, "bidirectional": shape.bidirectional}
    theirs = nn.LSTM(shape.I, shape.H, **kw).to(device)
    ours = lstm_seq.LSTM(shape.I, shape.H, layer_norm=shape.layer_norm, backend=backend, **kw).to(device)
    ours.load_state_dict(theirs.state_dict(), strict=not shape.layer_norm)
    return theirs, ours


@contextlib.contextmanager
def precision(dtype: str, device: torch.device) -> Iterator[None]:
    if dtype == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def check(shape: Shape, device: torch.device, backend: str) -> float:
    """Max abs difference between ours and nn.LSTM (float64, T cut to 16 steps, B to 4); LayerNorm
    cases are checked against the reference backend instead (nn.LSTM has no LayerNorm)."""
    small = Shape(
        min(shape.B, 4), min(shape.T, 16), shape.I, shape.H, shape.L, shape.bidirectional, shape.layer_norm
    )
    theirs, ours = build(small, device, backend)
    theirs, ours = theirs.double(), ours.double()
    x = torch.randn(small.T, small.B, small.I, device=device, dtype=torch.float64)
    with torch.no_grad():
        if shape.layer_norm:
            ref = lstm_seq.LSTM(small.I, small.H, small.L, bidirectional=small.bidirectional, layer_norm=True)
            ref = ref.to(device).double()
            ref.load_state_dict(ours.state_dict())
            expected = ref(x)[0]
        else:
            expected = theirs(x)[0]
        got = ours(x)[0]
    return (got - expected).abs().max().item()


def time_interleaved(
    fns: list[Callable[[], None]], device: torch.device, warmup: int, repeats: int
) -> list[float]:
    """Median milliseconds of each function, run in turn (A B C A B C …) so that a change in machine
    load during the measurement hits every variant alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times[k].append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def workload(
    module: nn.Module,
    x: torch.Tensor,
    dtype: str,
    device: torch.device,
    backward: bool,
    lengths: torch.Tensor | None = None,
) -> Callable[[], None]:
    """One timed call. With ``lengths``: lstm_seq gets ``lengths=``; nn.LSTM a packed batch."""

    def run() -> torch.Tensor:
        if lengths is None:
            return module(x)[0]
        if isinstance(module, lstm_seq.LSTM):
            return module(x, lengths=lengths)[0]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        return pad_packed_sequence(module(packed)[0], total_length=x.shape[0])[0]

    def fn() -> None:
        if backward:
            x.grad = None
            module.zero_grad(set_to_none=True)
            with precision(dtype, device):
                out = run()
            out.float().sum().backward()
        else:
            with torch.no_grad(), precision(dtype, device):
                run()

    return fn


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=None, choices=["fp32", "bf16"])
    parser.add_argument("--passes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (median); 20 on GPU, 3 on CPU")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first; 5 on GPU, 1 on CPU")
    parser.add_argument("--backend", default="auto", choices=lstm_seq.lstm.BACKENDS)
    parser.add_argument("--with-reference", action="store_true", help="also time backend='reference'")
    parser.add_argument(
        "--also", nargs="*", default=[], choices=["fused", "layerwise"], help="also time these backends"
    )
    parser.add_argument("--lengths", action="store_true", help="add a padded-batch case per shape")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--quick", action="store_true", help="divide T and B by 8 (smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    dtypes = args.dtypes or (["fp32", "bf16"] if gpu else ["fp32"])
    repeats = args.repeats or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    torch.manual_seed(0)

    rows = []
    name = device_name(device)
    print(
        f"device: {name} | torch {torch.__version__} | cuDNN {torch.backends.cudnn.version()} | median of {repeats}"
    )
    header = f"{'case':<16}{'dtype':<6}{'pass':<9}{'plan':<10}{'ours ms':>10}{'torch ms':>10}{'speedup':>9}"
    if args.with_reference:
        header += f"{'ref ms':>10}"
    header += "".join(f"{b + ' ms':>13}" for b in args.also)
    print(header)
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        if args.quick:
            shape = Shape(
                max(1, shape.B // 8),
                max(2, shape.T // 8),
                shape.I,
                shape.H,
                shape.L,
                shape.bidirectional,
                shape.layer_norm,
            )
        err = max(check(shape, device, backend) for backend in (args.backend, *args.also))
        if err > 1e-9:
            raise SystemExit(f"{shape_name}: lstm_seq.LSTM differs from the float64 reference by {err:.3g}")
        theirs, ours = build(shape, device, args.backend)
        x = torch.randn(shape.T, shape.B, shape.I, device=device, requires_grad=True)
        ref = None
        if args.with_reference:
            _, ref = build(shape, device, "reference")
        extra = [build(shape, device, b)[1] for b in args.also]
        for m in extra:
            m.load_state_dict(ours.state_dict())
        gen = torch.Generator().manual_seed(1)
        cases: list[tuple[str, torch.Tensor | None]] = [(shape_name, None)]
        if args.lengths:
            lens = torch.randint(shape.T // 2, shape.T + 1, (shape.B,), generator=gen)
            lens[0] = shape.T
            cases.append((f"{shape_name}+len", lens))
        for (case_name, lens), dtype, pass_ in itertools.product(cases, dtypes, args.passes):
            with precision(dtype, device):
                plan = ours.plan(x)
            backward = pass_ == "fwd+bwd"
            fns = [
                workload(m, x, dtype, device, backward, lens)
                for m in (ours, theirs, ref, *extra)
                if m is not None
            ]
            ours_ms, torch_ms, *more_ms = time_interleaved(fns, device, warmup, repeats)
            ref_ms = more_ms[:1] if ref is not None else []
            also_ms = dict(zip(args.also, more_ms[len(ref_ms) :], strict=True))
            row = {
                "name": case_name,
                "dtype": dtype,
                "pass": pass_,
                "ours_ms": round(ours_ms, 3),
                "torch_ms": round(torch_ms, 3),
                "speedup": round(torch_ms / ours_ms, 3),
                "plan": plan,
                "shape": vars(shape),
                "max_abs_err_f64": err,
            }
            line = f"{case_name:<16}{dtype:<6}{pass_:<9}{plan:<10}{ours_ms:>10.2f}{torch_ms:>10.2f}{torch_ms / ours_ms:>8.2f}x"
            if ref_ms:
                row["reference_ms"] = round(ref_ms[0], 3)
                line += f"{ref_ms[0]:>10.2f}"
            if also_ms:
                row["also_ms"] = {b: round(v, 3) for b, v in also_ms.items()}
                line += "".join(f"{v:>13.2f}" for v in also_ms.values())
            print(line, flush=True)
            rows.append(row)

    suffix = ("-quick" if args.quick else "") + (f"-{slug(args.tag)}" if args.tag else "")
    write_result(args.out, name, suffix, quick=args.quick, repeats=repeats, cases=rows)


if __name__ == "__main__":
    main()
