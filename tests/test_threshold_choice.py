"""The output threshold's choice after training (sw/train/threshold.py, NumPy only)."""

from __future__ import annotations

from firstspike.sw.train.threshold import highest_firing_threshold, lowest_good_threshold

FIRED = {10: 0.99, 20: 0.97, 30: 0.955, 40: 0.90}
ACCURACY = {10: 0.80, 20: 0.85, 30: 0.86, 40: 0.87}


def test_the_lowest_threshold_within_the_tolerance_of_the_best_accuracy_is_chosen() -> None:
    assert lowest_good_threshold(FIRED, ACCURACY.get, 0.015) == (30, 0.86)
    assert lowest_good_threshold(FIRED, ACCURACY.get, 0.0) == (40, 0.87)


def test_with_a_firing_floor_the_highest_threshold_that_still_fires_often_enough_is_chosen() -> None:
    assert highest_firing_threshold(FIRED, ACCURACY.get, FIRED.get, 0.95, 0.0) == (30, 0.86)
    assert highest_firing_threshold(FIRED, ACCURACY.get, FIRED.get, 0.98, 0.0) == (10, 0.80)


def test_a_floor_no_threshold_reaches_falls_back_to_the_accuracy_rule() -> None:
    assert highest_firing_threshold(FIRED, ACCURACY.get, FIRED.get, 0.999, 0.015) == (30, 0.86)
