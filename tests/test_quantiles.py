"""The quick medians and percentiles of small arrays give numpy's values."""

import numpy as np
import pytest

from oldphoto.quantiles import median, percentiles


def test_median_is_numpys():
    """Odd and even sizes, 8-bit levels (ties) and continuous values, flat and 2-D."""
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 16, 47, 83, 144]:
        for _ in range(30):
            levels = (rng.integers(0, 256, size) / 255).astype(np.float32)
            for values in (levels, rng.normal(0.5, 0.02, size).astype(np.float32), levels.reshape(1, -1)):
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
