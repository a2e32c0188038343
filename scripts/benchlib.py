"""What the benchmark scripts share: timing an action the same way everywhere."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path


def timed(label: str, action: Callable[[], object], runs: int, width: int = 52) -> float:
    """Print the median and best wall time, and the best CPU time (steadier on a busy host)."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    median = statistics.median(walls)
    print(
        f"{label:<{width}} median {median * 1000:7.1f} ms  best {min(walls) * 1000:7.1f} ms"
        f"  cpu {min(cpus) * 1000:7.1f} ms"
    )
    return median


def print_ratios(times: Mapping[str, Sequence[float]], baseline: str, width: int = 28) -> None:
    """One line per case: its median and its ratio to the median of ``baseline``."""
    base = statistics.median(times[baseline])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<{width}} median {median * 1000:7.1f} ms   ratio {median / base:.3f}")


@contextlib.contextmanager
def scratch_dir(name: str, keep: bool) -> Iterator[Path]:
    """A world-readable temporary directory for one benchmark run (the test suite's
    prefixes are read by other uids); removed afterwards unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=f"safe-pip-bench-{name}-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
