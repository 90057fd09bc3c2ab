import numpy as np

from oldphoto.metrics.roc import best_f1_threshold, threshold_for_precision


def test_operating_points_on_a_known_ranking():
    # scores: 4 positives above 0.6, negatives at 0.7 (one), 0.5, 0.3, 0.1
    scores = np.array([0.95, 0.9, 0.8, 0.65, 0.7, 0.5, 0.3, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    t, f1 = best_f1_threshold(scores, labels)
    assert t == 0.65 and abs(f1 - 8 / 9) < 1e-12  # 4 TP, 1 FP
    t, precision, recall = threshold_for_precision(scores, labels, 0.99)
    assert t == 0.8 and precision == 1.0 and recall == 0.75  # stop before the negative at 0.7
    t, precision, _ = threshold_for_precision(scores, labels, 0.8)
    assert t == 0.65 and precision == 0.8
