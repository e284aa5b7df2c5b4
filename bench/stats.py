"""Small statistics helpers: percentiles of one repetition, spread across repetitions.

Each benchmark reduces one repetition to a few figures (p50, events/s, ...) and
then reports, per figure, the median over repetitions and the min-max spread.
The median is what the targets are checked against: one noisy repetition on a
2-core machine should neither pass nor fail a target by itself.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["percentile", "spread"]


def percentile(sorted_values: Sequence[int | float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of already sorted values.

    Nearest rank (not interpolation) so that p99.9 is a latency one call really had.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    # The epsilon keeps 100000 * 99.9 / 100 from rounding up to rank 99,901.
    rank = max(1, math.ceil(len(sorted_values) * q / 100 - 1e-9))
    return float(sorted_values[rank - 1])


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of one figure over the repetitions."""
    if not values:
        raise ValueError("no repetitions to summarise")
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
    }
