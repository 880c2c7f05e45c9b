"""The pure metric code, against published worked examples and the reference package."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from annotate.agreement import metrics
from annotate.agreement.report import THRESHOLDS, AnnotatorQuality, QuestionLabel, SplitTest

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: four observers,
# twelve units, values 1-5, missing data. Published nominal alpha = 0.743.
FOUR_OBSERVERS = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)


def _value_counts(reliability: np.ndarray, values: list[int]) -> np.ndarray:
    return np.stack([(reliability == v).sum(axis=0) for v in values], axis=1)


def test_it_reproduces_the_published_four_observer_nominal_alpha():
    counts = _value_counts(FOUR_OBSERVERS, [1, 2, 3, 4, 5])

    value = metrics.alpha_nominal(counts, np.ones(len(counts)))
    closed_form = metrics.alpha_from_coincidences(metrics.unit_coincidences(counts).sum(axis=0))

    assert round(value, 3) == 0.743
    # By hand (the paper's coincidence table): n_c = 9, 13, 10, 5, 3 (n = 40; unit 12 has one value),
    # off-diagonal coincidences sum to 8, so alpha = 1 - 39 * 8 / (40^2 - sum n_c^2) = 1 - 312/1216 = 113/152.
    assert value == pytest.approx(113 / 152, abs=1e-12)
    assert value == pytest.approx(float(closed_form), abs=1e-12)
    assert abs(value - krippendorff.alpha(reliability_data=FOUR_OBSERVERS, level_of_measurement="nominal")) < 1e-12


def test_it_counts_pairs_by_hand():
    # Units: [3 a, 1 b] -> 6 pairs, 3 agree; [2, 0] -> 1 pair, 1 agrees; [1, 0] -> no pair.
    counts = metrics.pair_counts(np.array([[3, 1], [2, 0], [1, 0]]), np.array([2, 1, 5]))
    assert (counts.paired_units, counts.values_in_paired_units) == (3, 10)
    assert (counts.pairs, counts.agreeing_pairs, counts.disagreeing_pairs) == (13, 7, 6)
    assert counts.agreement_rate == pytest.approx(7 / 13)


def test_it_agrees_with_the_package_on_random_binary_data_with_missing_votes():
    rng = np.random.default_rng(7)
    for _ in range(20):
        reliability = rng.choice([0.0, 1.0, NAN], size=(6, 40), p=[0.4, 0.3, 0.3])
        counts = _value_counts(reliability, [0, 1])
        patterns, weights = np.unique(counts, axis=0, return_counts=True)
        expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
        assert abs(metrics.alpha_nominal(patterns, weights) - expected) < 1e-9
        coincidences = np.einsum("k,kcd->cd", weights, metrics.unit_coincidences(patterns))
        assert abs(float(metrics.alpha_from_coincidences(coincidences)) - expected) < 1e-9


def test_it_returns_none_when_alpha_is_undefined():
    assert metrics.alpha_nominal(np.zeros((0, 2)), np.zeros(0)) is None
    assert metrics.alpha_nominal(np.array([[1, 0], [0, 1]]), np.array([3, 3])) is None  # no unit has 2 values
    assert metrics.alpha_nominal(np.array([[2, 0], [3, 0]]), np.array([4, 1])) is None  # no variation


def test_it_bootstraps_over_units_like_an_explicit_resample():
    """The multinomial-over-patterns shortcut equals resampling units and calling the package."""
    counts = _value_counts(FOUR_OBSERVERS, [1, 2, 3, 4, 5])
    counts = counts[counts.sum(axis=1) >= 2]
    patterns, weights = np.unique(counts, axis=0, return_counts=True)
    rng = np.random.default_rng(0)
    draws = rng.multinomial(int(weights.sum()), weights / weights.sum(), size=50)
    fast = metrics.alpha_from_coincidences(np.einsum("bk,kcd->bcd", draws, metrics.unit_coincidences(patterns)))
    for draw, value in zip(draws, fast, strict=True):
        resampled = metrics.expand_patterns(patterns, draw)
        if np.count_nonzero(resampled.sum(axis=0)) < 2:
            assert np.isnan(value)
            continue
        assert value == pytest.approx(
            krippendorff.alpha(value_counts=resampled, level_of_measurement="nominal"), abs=1e-9
        )


def test_it_gives_a_bootstrap_interval_that_narrows_with_more_data():
    small = metrics.bootstrap_alpha_ci(np.array([[3, 0], [2, 1], [0, 3]]), np.array([4, 3, 4]))
    large = metrics.bootstrap_alpha_ci(np.array([[3, 0], [2, 1], [0, 3]]), np.array([400, 300, 400]))
    point = metrics.alpha_nominal(np.array([[3, 0], [2, 1], [0, 3]]), np.array([400, 300, 400]))
    assert small is not None and large is not None
    assert small[0] < large[0] <= point <= large[1] < small[1]
    assert metrics.bootstrap_alpha_ci(np.array([[1, 0]]), np.array([5])) is None


def test_it_holm_adjusts_p_values_step_down_and_monotone() -> None:
    assert metrics.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert metrics.holm([]) == []


def test_it_labels_a_question_with_its_majority_or_a_tie() -> None:
    assert metrics.question_label(3, 4, 4.5) == QuestionLabel("a", 3, 1, 4.5, 0.75)
    assert metrics.question_label(1, 2, None).majority == "tie"
    assert metrics.question_label(0, 3, 2.0).majority == "b"


def test_it_tests_low_against_high_confidence_splits_only_when_both_bins_have_data() -> None:
    assert metrics.low_vs_high_split_test((3, 4), (0, 0)) == SplitTest(None, None)
    test = metrics.low_vs_high_split_test((9, 10), (1, 10))
    assert test.odds_ratio is not None and test.odds_ratio > 1 and test.p_value is not None and test.p_value < 0.01


def test_it_flags_an_annotator_only_past_the_thresholds() -> None:
    row = AnnotatorQuality(1, "x", 10, None, None, 0, None, None, None, 4, 0.5, 10, 20, 1.0, None, 0.001, 1.0, 0.5, [])
    assert metrics.annotator_flags(row, THRESHOLDS) == [
        "same_side",
        "same_confidence",
        "too_fast",
        "position_bias",
        "low_gold_accuracy",
    ]
    row.votes, row.gold_answers, row.position_bias_p_holm = 9, 3, 0.02
    assert metrics.annotator_flags(row, THRESHOLDS) == []


def test_it_explains_a_low_alpha_by_prevalence():
    # 30 comparisons with two votes: 24 both chose clip_a, 6 split a/b. 80% agree, but clip_a is 90% of the votes.
    patterns = np.array([[2, 0, 0], [1, 1, 0]])
    weights = np.array([24, 6])

    result = metrics.alpha(patterns, weights, bootstrap_samples=0)

    assert result.observed_agreement == pytest.approx(0.8)
    assert result.expected_agreement == pytest.approx((54 * 53 + 6 * 5) / (60 * 59), abs=1e-6)
    assert result.majority_share == pytest.approx(0.9)
    observed, expected = result.observed_agreement, result.expected_agreement
    assert result.value == pytest.approx((observed - expected) / (1 - expected), abs=1e-5)
    assert result.value < 0 and "90% of paired votes chose clip_a" in result.prevalence_note
    assert "80% observed agreement" in result.prevalence_note


def test_it_adds_no_prevalence_note_when_answers_are_balanced():
    patterns = np.array([[2, 0, 0], [0, 2, 0], [1, 1, 0]])
    weights = np.array([12, 12, 6])

    result = metrics.alpha(patterns, weights, bootstrap_samples=0)

    assert result.observed_agreement == pytest.approx(0.8)
    assert result.expected_agreement == pytest.approx((30 * 29 * 2) / (60 * 59), abs=1e-6)
    assert result.value is not None and result.value > 0.5 and result.prevalence_note == ""
