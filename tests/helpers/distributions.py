"""Two-sample comparisons with tolerances derived from the sample sizes (for the netem
cross-check): quantile bands, the two-sample Kolmogorov-Smirnov distance, batch-means standard
errors for correlated 0/1 series, loss-burst lengths. Pure functions, no I/O."""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence

Z = 4.5  # standard errors allowed: a false alarm well under once in 10^4 comparisons
KS_C = 1.95  # two-sample KS critical coefficient for alpha = 0.001
QUANTILES = (0.10, 0.50, 0.90, 0.99)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of a sorted sample (q clamped to [0, 1]; nearest rank)."""
    q = min(1.0, max(0.0, q))
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def quantile_band(ordered: Sequence[float], q: float, z: float = Z) -> tuple[float, float]:
    """Where the population's q-quantile lies given this sorted sample: the sample quantiles at
    q -+ z * sqrt(q (1 - q) / n) (the rank's binomial spread)."""
    spread = z * math.sqrt(q * (1 - q) / len(ordered))
    return quantile(ordered, q - spread), quantile(ordered, q + spread)


def quantiles_agree(a: Sequence[float], b: Sequence[float], slack: float,
                    quantiles: Sequence[float] = QUANTILES) -> list[str]:
    """Compare two samples' quantiles: each pair of bands (widened by `slack`, e.g. the timing
    floor) must overlap. Returns the disagreements, one line each (empty: they agree)."""
    a, b = sorted(a), sorted(b)
    problems = []
    for q in quantiles:
        low_a, high_a = quantile_band(a, q)
        low_b, high_b = quantile_band(b, q)
        if low_a - slack > high_b or low_b - slack > high_a:
            problems.append(f"p{q * 100:g}: {quantile(a, q):.3f} [{low_a:.3f}..{high_a:.3f}] vs "
                            f"{quantile(b, q):.3f} [{low_b:.3f}..{high_b:.3f}], slack {slack:.3f}")
    return problems


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = sorted(a), sorted(b)
    return max(abs(bisect.bisect_right(a, x) / len(a) - bisect.bisect_right(b, x) / len(b))
               for x in (*a, *b))


def ks_critical(n: int, m: int, c: float = KS_C) -> float:
    """The KS distance two samples of sizes n and m from one distribution stay under."""
    return c * math.sqrt((n + m) / (n * m))


def batch_standard_error(series: Sequence[int], batches: int = 50) -> float:
    """Standard error of the mean of a 0/1 series whose neighbours may be correlated (a
    loss model with bursts): from the spread of the means of `batches` consecutive blocks."""
    size = len(series) // batches
    means = [sum(series[i * size:(i + 1) * size]) / size for i in range(batches)]
    centre = sum(means) / batches
    variance = sum((m - centre) ** 2 for m in means) / (batches - 1)
    return math.sqrt(variance / batches)


def proportions_agree(hits_a: int, n_a: int, hits_b: int, n_b: int, z: float = Z) -> str | None:
    """Two independent binomial proportions equal within z standard errors; else the reason."""
    pa, pb = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    error = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_a + 1 / n_b))
    if abs(pa - pb) > z * error:
        return f"{pa:.4f} ({hits_a}/{n_a}) vs {pb:.4f} ({hits_b}/{n_b}), allowed {z * error:.4f}"
    return None


def runs(series: Sequence[int], value: int = 1) -> list[int]:
    """Lengths of the runs of `value` (e.g. loss bursts in a lost=1 series)."""
    lengths, current = [], 0
    for item in series:
        if item == value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    if current:
        lengths.append(current)
    return lengths



def median_gap(times: Sequence[float]) -> float:
    """The median gap between consecutive times of a sorted series: the time per packet of a
    back-to-back burst, which a stall (a sender starved for a while, a timer firing late, a
    burst released at once) moves in one or a few gaps, where it moves the span from first to
    last as a whole."""
    return statistics.median(later - earlier for earlier, later in itertools.pairwise(times))
