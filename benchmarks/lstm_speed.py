"""Time lstm_seq.LSTM against torch.nn.LSTM on named shapes, forward and forward+backward.

Before a shape is timed, every backend that will be timed on it is checked (:func:`check`) against an
independent float64 computation — nn.LSTM for plain LSTMs, for LayerNorm the equations written out in
this file and run on each sequence alone — on the shape's I, H, L and D with T and B cut to 16 and 4,
with and without ``lengths``: outputs, h_n, c_n, the input gradient and every weight gradient, in
float64 and in each timed precision. Then the variants are timed side by side: warm-up, then the
median of ``--repeats`` runs (CUDA events on a GPU, ``perf_counter`` on CPU). Prints a table and
writes ``benchmarks/results/<date>-<device>.json`` (schema in benchmarks/RESULTS.md).

    python benchmarks/lstm_speed.py                       # every shape; fp32 (+ bf16 on a GPU)
    python benchmarks/lstm_speed.py --shapes cap-dec 1layer --repeats 5 --with-reference
    python benchmarks/lstm_speed.py --quick               # shapes cut down 8x in T and B (a smoke run)
    python benchmarks/lstm_speed.py --also fused layerwise --lengths   # more backends; padded batches too
    python benchmarks/lstm_speed.py --shapes ln-1layer --also ln_kernel --with-reference   # LayerNorm backends

``--lengths`` adds a "<shape>+len" case per shape: lengths drawn in [T/2, T]; ours gets ``lengths=``,
nn.LSTM gets the same batch packed (the packing is inside the timed region for both, as in use).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
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
from lstm_seq.reference import LN_EPS


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
    # today's ASR encoder (2 x 128 bidirectional on 16 channels x 10 MFCC bins; ~2.5 s utterances after 4x
    # subsampling); B48 = a 12,000-frame batch, twice the loader's default max_frames (6,000) since the settings rework
    "asr-default": Shape(48, 64, 160, 128, 2, True),
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


def supports(backend: str, shape: Shape) -> bool:
    """Whether ``backend`` runs ``shape`` (``fused``/``layerwise`` have no LayerNorm; ``ln_kernel`` is only
    LayerNorm)."""
    if shape.layer_norm:
        return backend not in ("fused", "layerwise")
    return backend != "ln_kernel"


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


CHECK_T, CHECK_B = 16, 4  # the correctness check runs each case on T and B cut to these (full I, H, L, D)
# max |ours - truth| / max |truth| allowed per quantity: float64 (same maths, other order of operations), and the
# timed precision against the float64 truth (fp32 rounding; bf16 autocast keeps 8 bits of mantissa). For bf16 the
# bound is at least BF16_FLOOR_FACTOR x what rounding the inputs, states and weights to bf16 alone costs (the
# float64 truth of the rounded values against the truth; ≈ 0.09 at T = 16 for the LayerNorm shapes, above 0.1)
CHECK_TOL = {"f64": 1e-9, "fp32": 1e-3, "bf16": 0.1}
BF16_FLOOR_FACTOR = 2.0


def _ln(z: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm over the last axis, written out: (z - mean) / sqrt(biased var + eps) * gain (+ bias)."""
    mean = z.mean(-1, keepdim=True)
    var = ((z - mean) ** 2).mean(-1, keepdim=True)
    out = (z - mean) / torch.sqrt(var + LN_EPS) * gain
    return out if bias is None else out + bias


def ln_lstm_one_sequence(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, p: dict[str, torch.Tensor], layers: int, dirs: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LayerNorm LSTM of ``lstm_seq/lstm.py``'s docstring on ONE unpadded sequence, step by step, from
    the equations (no lstm_seq code): the independent ground truth for the LayerNorm cases.

    x: (n, I); h0, c0: (L*D, H); p: the module's parameters by name. Returns output (n, D*H), h_n and
    c_n (L*D, H).
    """
    layer_in, h_n, c_n = x, [], []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            h, c = h0[layer * dirs + d], c0[layer * dirs + d]
            steps = range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])
            out: list[torch.Tensor] = [x.new_empty(0)] * x.shape[0]
            for t in steps:
                a = _ln(p[f"weight_ih_{sfx}"] @ layer_in[t], p[f"ln_ih_weight_{sfx}"]) + p[f"bias_ih_{sfx}"]
                a = a + _ln(p[f"weight_hh_{sfx}"] @ h, p[f"ln_hh_weight_{sfx}"]) + p[f"bias_hh_{sfx}"]
                i, f, g, o = a.chunk(4)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(_ln(c, p[f"ln_c_weight_{sfx}"], p[f"ln_c_bias_{sfx}"]))
                out[t] = h
            outs.append(torch.stack(out))
            h_n.append(h)
            c_n.append(c)
        layer_in = torch.cat(outs, -1)
    return layer_in, torch.stack(h_n), torch.stack(c_n)


def _truth(
    shape: Shape,
    theirs: nn.LSTM,
    ours: lstm_seq.LSTM,
    x: torch.Tensor,
    hx: tuple,
    lengths: torch.Tensor | None,
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Float64 outputs [out, h_n, c_n] and the parameters they were computed from, by an implementation that
    is not lstm_seq: nn.LSTM (on the packed batch when there are lengths), or for LayerNorm
    :func:`ln_lstm_one_sequence` on each sequence alone."""
    if not shape.layer_norm:
        params = dict(theirs.named_parameters())
        if lengths is None:
            out, (h, c) = theirs(x, hx)
        else:
            out, (h, c) = theirs(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
            out = pad_packed_sequence(out, total_length=x.shape[0])[0]
        return [out, h, c], params
    params = {k: v.detach().clone().requires_grad_() for k, v in ours.named_parameters()}
    dirs = 2 if shape.bidirectional else 1
    full = [x.shape[0]] * x.shape[1] if lengths is None else lengths.tolist()
    outs, hs, cs = [], [], []
    for b, n in enumerate(full):
        o, h, c = ln_lstm_one_sequence(x[:n, b], hx[0][:, b], hx[1][:, b], params, shape.L, dirs)
        outs.append(torch.cat([o, o.new_zeros(x.shape[0] - n, o.shape[1])]))
        hs.append(h)
        cs.append(c)
    return [torch.stack(outs, 1), torch.stack(hs, 1), torch.stack(cs, 1)], params


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def _bf16_rounding_floor(
    shape: Shape,
    theirs: nn.LSTM,
    ours: lstm_seq.LSTM,
    x: torch.Tensor,
    hx: tuple,
    lengths: torch.Tensor | None,
    weights: list[torch.Tensor],
    want: list[torch.Tensor],
) -> float:
    """What rounding alone costs: the float64 truth computed from the input, states and every parameter rounded
    to bf16, against the truth of the exact values (``want``: outputs then gradients), as in :func:`check`."""

    def rounded(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16).double()

    theirs_r, ours_r = copy.deepcopy(theirs), copy.deepcopy(ours)
    with torch.no_grad():
        for p in [*theirs_r.parameters(), *ours_r.parameters()]:
            p.copy_(rounded(p))
    xr = rounded(x).requires_grad_()
    got, params = _truth(shape, theirs_r, ours_r, xr, (rounded(hx[0]), rounded(hx[1])), lengths)
    loss = sum((w * y).sum() for w, y in zip(weights, got, strict=True))
    got += torch.autograd.grad(loss, [xr, *params.values()])
    return max(_rel_err(a, b) for a, b in zip(got, want, strict=True))


def check(shape: Shape, device: torch.device, backend: str, dtype: str) -> dict[str, float]:
    """Before a case is timed: ours (``backend``) against an independent float64 computation, on the case's
    I, H, L and D with T and B cut to ``CHECK_T``, ``CHECK_B``; with and without ``lengths`` (a padded batch,
    one sequence full); random h0/c0 and, for LayerNorm, random LayerNorm parameters. Compared: output,
    h_n, c_n, the input gradient and every weight gradient of a loss that weights all of them randomly, and
    the outputs of a forward under ``torch.no_grad()``.
    Returns the largest relative error (max abs difference / max magnitude) in float64 (``"f64"``) and in
    the timed precision (``dtype``: ours in fp32, or under bf16 autocast, against the same float64 truth), and
    for bf16 also ``"bf16_floor"``: what rounding the inputs and weights to bf16 alone costs
    (:func:`_bf16_rounding_floor`), against which the bf16 error is judged.
    """
    small = Shape(
        min(shape.B, CHECK_B), min(shape.T, CHECK_T), shape.I, shape.H, shape.L, shape.bidirectional,
        shape.layer_norm,
    )  # fmt: skip
    torch.manual_seed(2)  # the weights: the same check whatever ran before
    theirs, ours = build(small, device, backend)
    theirs, ours = theirs.double(), ours.double()
    gen = torch.Generator().manual_seed(2)

    def rand(*size: int, scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.randn(*size, generator=gen, dtype=torch.float64)).to(device)

    if shape.layer_norm:
        with torch.no_grad():
            for name, p in ours.named_parameters():
                if name.startswith("ln_"):
                    p.add_(rand(*p.shape, scale=0.2))
    dirs = 2 if small.bidirectional else 1
    x = rand(small.T, small.B, small.I)
    hx = (
        rand(small.L * dirs, small.B, small.H, scale=0.5),
        rand(small.L * dirs, small.B, small.H, scale=0.5),
    )
    lengths = torch.arange(small.T, small.T - small.B, -1).clamp_min(1)  # T, T-1, …: one full, others padded
    weights = [rand(small.T, small.B, dirs * small.H), rand(*hx[0].shape), rand(*hx[1].shape)]
    errs = {"f64": 0.0, dtype: 0.0}
    for lens in (None, lengths):
        xt = x.clone().requires_grad_()
        want, params = _truth(small, theirs, ours, xt, hx, lens)
        loss = sum((w * y).sum() for w, y in zip(weights, want, strict=True))
        want += torch.autograd.grad(loss, [xt, *params.values()])
        if dtype == "bf16":
            floor = _bf16_rounding_floor(small, theirs, ours, x, hx, lens, weights, want)
            errs["bf16_floor"] = max(errs.get("bf16_floor", 0.0), floor)
        for prec in ("f64", dtype):
            cast = torch.float64 if prec == "f64" else torch.float32
            ours.to(cast)
            named = dict(ours.named_parameters())
            xg = x.to(cast).requires_grad_()
            with precision(prec, device):
                out, (h, c) = ours(xg, (hx[0].to(cast), hx[1].to(cast)), lengths=lens)
            got = [out, h, c]
            loss = sum((w.to(cast) * y.to(cast)).sum() for w, y in zip(weights, got, strict=True))
            got += torch.autograd.grad(loss, [xg, *(named[n] for n in params)])
            with torch.no_grad(), precision(prec, device):  # auto may run another backend without autograd
                out, (h, c) = ours(xg, (hx[0].to(cast), hx[1].to(cast)), lengths=lens)
            got += [out, h, c]
            want_all = want + want[:3]
            errs[prec] = max(errs[prec], *(_rel_err(a, b) for a, b in zip(got, want_all, strict=True)))
        ours.double()
    return errs


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
        "--also",
        nargs="*",
        default=[],
        choices=["fused", "layerwise", "ln_kernel"],
        help="also time these backends (each on the shapes it supports)",
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
        if not supports(args.backend, shape):
            print(f"{shape_name}: skipped (backend={args.backend!r} does not run it)", flush=True)
            continue
        also = [b for b in args.also if supports(b, shape)]
        checked = [args.backend, *also] + (["reference"] if args.with_reference else [])
        errs: dict[str, float] = {}
        for backend, dtype in itertools.product(checked, dtypes):
            found = check(shape, device, backend, dtype)
            floor = found.pop("bf16_floor", 0.0)
            for prec, err in found.items():
                allowed = (
                    max(CHECK_TOL[prec], BF16_FLOOR_FACTOR * floor) if prec == "bf16" else CHECK_TOL[prec]
                )
                if err > allowed:
                    raise SystemExit(
                        f"{shape_name}: backend={backend!r} ({prec}) differs from the float64 truth by {err:.3g} "
                        f"(relative; allowed {allowed:.3g}"
                        + (
                            f", {BF16_FLOOR_FACTOR:g} x the bf16 rounding floor {floor:.3g})"
                            if floor
                            else ")"
                        )
                    )
                errs[prec] = max(errs.get(prec, 0.0), err)
            if floor:
                errs["bf16_floor"] = max(errs.get("bf16_floor", 0.0), floor)
        print(f"{shape_name}: checked " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()), flush=True)
        theirs, ours = build(shape, device, args.backend)
        x = torch.randn(shape.T, shape.B, shape.I, device=device, requires_grad=True)
        ref = None
        if args.with_reference:
            _, ref = build(shape, device, "reference")
        extra = [build(shape, device, b)[1] for b in also]
        for m in extra:
            m.load_state_dict(ours.state_dict())
        gen = torch.Generator().manual_seed(1)
        cases: list[tuple[str, torch.Tensor | None]] = [(shape_name, None)]
        if args.lengths:
            lens = torch.randint(shape.T // 2, shape.T + 1, (shape.B,), generator=gen)
            lens[0] = shape.T
            cases.append((f"{shape_name}+len", lens))
        for (case_name, lens), dtype, pass_ in itertools.product(cases, dtypes, args.passes):
            backward = pass_ == "fwd+bwd"
            with torch.set_grad_enabled(backward), precision(dtype, device):
                plan = ours.plan(x, lengths=lens)
            fns = [
                workload(m, x, dtype, device, backward, lens)
                for m in (ours, theirs, ref, *extra)
                if m is not None
            ]
            ours_ms, torch_ms, *more_ms = time_interleaved(fns, device, warmup, repeats)
            ref_ms = more_ms[:1] if ref is not None else []
            also_ms = dict(zip(also, more_ms[len(ref_ms) :], strict=True))
            row = {
                "name": case_name,
                "dtype": dtype,
                "pass": pass_,
                "ours_ms": round(ours_ms, 3),
                "torch_ms": round(torch_ms, 3),
                "speedup": round(torch_ms / ours_ms, 3),
                "plan": plan,
                "shape": vars(shape),
                "check_rel_err": {k: float(f"{v:.3g}") for k, v in errs.items()},
            }
            line = f"{case_name:<16}{dtype:<6}{pass_:<9}{plan:<10}{ours_ms:>10.2f}{torch_ms:>10.2f}{torch_ms / ours_ms:>8.2f}x"
            if ref_ms:
                row["reference_ms"] = round(ref_ms[0], 3)
                line += f"{ref_ms[0]:>10.2f}"
            if also_ms:
                row["also_ms"] = {b: round(v, 3) for b, v in also_ms.items()}
            line += "".join(f"{also_ms[b]:>13.2f}" if b in also_ms else f"{'-':>13}" for b in args.also)
            print(line, flush=True)
            rows.append(row)

    suffix = ("-quick" if args.quick else "") + (f"-{slug(args.tag)}" if args.tag else "")
    write_result(args.out, name, suffix, quick=args.quick, repeats=repeats, cases=rows)


if __name__ == "__main__":
    main()
