"""The held-out evaluation behind the weights' cards: rows, protocol and the pipeline's threshold."""

import numpy as np

from oldphoto.train.evaluate import Chain, evaluate_restoration, heldout_cases, markdown_table
from oldphoto.weights import bundled_weights_dir, find_card


def test_heldout_cases_are_deterministic_and_cover_both_kinds():
    a, used = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    b, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    assert used == "skimage:heldout"
    assert {c.kind for c in a} == {"unstructured", "mixed"}
    assert all(np.array_equal(x.degraded, y.degraded) for x, y in zip(a, b, strict=True))
    assert all(not c.mask.any() for c in a if c.kind == "unstructured")


def test_bundled_evaluation_rows_and_threshold():
    folder = bundled_weights_dir()
    chain = Chain.from_weights(folder)
    assert chain.threshold == find_card("detector", folder).threshold  # what the pipeline uses
    cases, _ = heldout_cases(["skimage:heldout"], size=64, crops=1, max_side=128)
    result = evaluate_restoration(chain, cases[:4])
    for kind in ("unstructured", "mixed"):
        assert {"degraded", "classical", "restored", "restored_raw"} <= set(result[kind])
        for row in result[kind].values():
            assert np.isfinite(row["psnr"]) and 0 < row["ssim"] <= 1
    assert "degraded input" in markdown_table(result)
