"""Writing is not damage (oldphoto.stages.writing); its effect on the masks is tested through
find_defects in test_defects.py."""

import numpy as np

from oldphoto.stages.writing import WRITING_MAX_SPREAD, _plain_ground


def test_the_writing_checks_ground_spread_is_numpys():
    """ink_of_writing asks a ground's spread for each short stroke or speck (thousands on a grainy
    photo): its quicker one gives np.percentile's decision."""
    rng = np.random.default_rng(0)
    for k in range(3000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        values = (0.5 + rng.normal(0, rng.choice([0.005, 0.01, 0.015, 0.02]), (h, w))).astype(np.float32)
        if k % 2:
            values = (np.round(values * 255) / 255).astype(np.float32)  # ties, as 8-bit scans have
        ground = rng.random((h, w)) < 0.7
        box, grow = np.array([rng.integers(0, w), rng.integers(0, h), 4, 4]), int(rng.integers(0, 5))
        x, y = int(box[0]), int(box[1])
        near = (slice(max(0, y - grow), y + 4 + grow), slice(max(0, x - grow), x + 4 + grow))
        around = values[near][ground[near]]
        spread = around.size > 0 and np.subtract(*np.percentile(around, (90, 10))) < WRITING_MAX_SPREAD
        assert _plain_ground(values, ground, box, grow) == spread
