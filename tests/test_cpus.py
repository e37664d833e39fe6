"""How many loader processes and cores the project uses."""

from __future__ import annotations

from lstm_seq.cpus import AUTO_WORKERS, GPU_LOADER_WORKERS, loader_workers, usable_cpus


def test_loader_workers_auto_is_none_on_a_cpu_and_a_few_with_cuda() -> None:
    assert loader_workers(3, cuda=True) == 3 and loader_workers(0, cuda=True) == 0  # a count is kept
    assert loader_workers(AUTO_WORKERS, cuda=False) == 0
    assert loader_workers(AUTO_WORKERS, cuda=True) == min(GPU_LOADER_WORKERS, usable_cpus() // 2)
