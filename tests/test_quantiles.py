"""The quick medians and percentiles of small arrays give numpy's values."""

import numpy as np
import pytest

from oldphoto.quantiles import median, percentiles


def test_median_is_numpys():
    rng = np.random.default_rng(0)
    for k in range(3000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        values = (0.5 + rng.normal(0, rng.choice([0.005, 0.01, 0.015, 0.02]), (h, w))).astype(np.float32)
        if k % 2:
            values = (np.round(values * 255) / 255).astype(np.float32)  # ties, as 8-bit scans have
        assert median(values) == float(np.median(values))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentiles_are_numpys(dtype):
    """The speck and stroke tests' fast percentiles give np.percentile's values, to the last bit, on
    small arrays of every size (odd, even, one value) and at the percentiles they ask."""
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 16, 47, 83, 144]:
        for _ in range(30):
            values = (rng.integers(0, 256, size) / 255).astype(dtype)
            for qs in [(25, 50, 75), (10, 90), (25, 75)]:
                assert percentiles(values, qs) == tuple(float(v) for v in np.percentile(values, qs))
