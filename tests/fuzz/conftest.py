"""Shared by the fuzz tests: a small, deterministic Hypothesis budget (the whole folder runs in well under a
minute; FUZZ_EXAMPLES=N searches deeper) and helpers that turn valid files into truncated or mutated ones."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),  # FUZZ_EXAMPLES=2000 for a deeper search
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is reproducible, never flaky
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")


@st.composite
def damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` truncated, with bytes overwritten, inserted or deleted, or spliced with random bytes."""
    kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete", "splice"]))
    data = bytearray(valid)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
    if kind == "splice":
        cut = draw(st.integers(0, len(data)))
        return bytes(data[:cut]) + draw(st.binary(max_size=64))
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "overwrite" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[i : i + draw(st.integers(1, 8))]
    return bytes(data)
