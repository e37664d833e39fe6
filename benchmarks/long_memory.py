"""Does the initialisation decide whether an LSTM learns a long memory? The "remember the first
symbol" task: T one-hot symbols (K kinds) of which only the first matters; the class is read from
the final hidden state. Compares nn.LSTM's default initialisation, ``forget_bias`` and
``chrono_init`` at several T, and reports the steps needed to reach 95% accuracy on fresh batches.

    python benchmarks/long_memory.py                    # the grid of benchmarks/RESULTS.md (2026-11-26)
    python benchmarks/long_memory.py --cases default:20:1500 forget3:50:400 chrono:50:400

The defaults are the grid of the recorded runs (``results/2026-11-26-long-memory.json`` and
``…/2026-12-01-long-memory.json``): every case with a 1,500-step budget; 2–13 minutes on the 2-core
development machines, most of it in the cases that never solve the task (each runs its whole budget).

Writes benchmarks/results/<date>-long-memory.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import lstm_seq

INITS = {
    "default": {},
    "forget1": {"forget_bias": 1.0},
    "forget3": {"forget_bias": 3.0},
    "chrono": "chrono",  # chrono_init = T (the dependency length of the task)
}


def run_case(init: str, steps_T: int, max_steps: int, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    kw = {"chrono_init": float(steps_T)} if INITS[init] == "chrono" else dict(INITS[init])  # type: ignore[arg-type]
    lstm = lstm_seq.LSTM(args.symbols, args.hidden, batch_first=True, **kw)  # type: ignore[arg-type]
    head = torch.nn.Linear(args.hidden, args.symbols)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed + 1)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        sym = torch.randint(0, args.symbols, (n, steps_T), generator=gen)
        return F.one_hot(sym, args.symbols).float(), sym[:, 0]

    solved_at = None
    acc = 0.0
    t0 = time.perf_counter()
    for step in range(1, max_steps + 1):
        x, y = batch(args.batch)
        _, (h, _) = lstm(x)
        logits = head(h[-1])
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == max_steps:
            with torch.no_grad():
                x, y = batch(512)
                acc = (head(lstm(x)[1][0][-1]).argmax(-1) == y).float().mean().item()
            if acc >= 0.95 and solved_at is None:
                solved_at = step
                break
    return {
        "init": init,
        "T": steps_T,
        "max_steps": max_steps,
        "solved_at_step": solved_at,
        "final_accuracy": round(acc, 4),
        "chance": round(1 / args.symbols, 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        default=[
            "default:20:1500",
            "forget3:20:1500",
            "default:50:1500",
            "forget1:50:1500",
            "forget3:50:1500",
            "chrono:50:1500",
        ],
        help="init:T:max_steps, init in " + ", ".join(INITS),
    )
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    print(
        f"H={args.hidden} K={args.symbols} B={args.batch} Adam lr={args.lr} seed={args.seed}; solved = 95% accuracy"
    )
    print(f"{'init':<9}{'T':>5}{'budget':>8}{'solved at':>11}{'accuracy':>10}{'seconds':>9}")
    rows = []
    for case in args.cases:
        init, t, budget = case.split(":")
        row = run_case(init, int(t), int(budget), args)
        rows.append(row)
        solved = row["solved_at_step"] or "never"
        print(
            f"{init:<9}{t:>5}{budget:>8}{solved!s:>11}{row['final_accuracy']:>10.3f}{row['seconds']:>9.1f}",
            flush=True,
        )
    result = {
        "date": dt.date.today().isoformat(),
        "torch": torch.__version__,
        "settings": vars(args) | {"out": None},
        "cases": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{result['date']}-long-memory.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
