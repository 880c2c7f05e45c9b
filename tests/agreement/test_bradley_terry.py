"""The pure Bradley–Terry core: fit, bootstrap intervals at their nominal rate, rank ranges, design gain."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.agreement import bradley_terry as bt


def _simulate(seed: int, k: int = 6, n: int = 600, spread: float = 0.6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    true = rng.normal(0, spread, k)
    true -= true.mean()
    i = rng.integers(0, k, n)
    j = (i + rng.integers(1, k, n)) % k
    y = (rng.random(n) < 1 / (1 + np.exp(-(true[i] - true[j])))).astype(float)
    return true, i, j, y


def test_it_recovers_known_strengths_from_many_votes() -> None:
    true, i, j, y = _simulate(0, n=20_000)
    theta = bt.fit(i, j, y, 6).strengths
    assert abs(theta.mean()) < 1e-9
    assert np.abs(theta - true).max() < 0.1


def test_it_counts_a_tie_as_half_a_win() -> None:
    # A beats B twice, B beats A once (row 2, where B is i), one tie: A has 2.5 of 4, B 1.5.
    i, j, y = np.array([0, 0, 1, 0]), np.array([1, 1, 0, 1]), np.array([1.0, 1.0, 1.0, 0.5])
    theta = bt.fit(i, j, y, 2, ridge=0.0).strengths
    assert theta[0] - theta[1] == pytest.approx(np.log(2.5 / 1.5), abs=1e-5)


def test_it_stays_finite_when_a_system_never_loses() -> None:
    theta = bt.fit(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([1.0, 1.0, 0.5]), 3).strengths
    assert np.isfinite(theta).all() and theta[0] == theta.max()


def test_it_weights_grouped_rows_like_repeated_rows() -> None:
    _, i, j, y = _simulate(1, n=200)
    repeated = bt.fit(np.r_[i, i], np.r_[j, j], np.r_[y, y], 6).strengths
    weighted = bt.fit(i, j, y, 6, weights=np.full(len(i), 2.0)).strengths
    assert np.allclose(repeated, weighted, atol=1e-5)


def test_it_covers_the_true_strengths_at_about_the_nominal_rate_over_seeds() -> None:
    inside = ranks_inside = total = 0
    for seed in range(40):
        true, i, j, y = _simulate(seed)
        theta = bt.fit(i, j, y, 6).strengths
        (samples,) = bt.bootstrap(i, j, [y], 6, samples=100, seed=seed, starts=[theta])
        board = bt.leaderboard(theta, samples)
        inside += int(((board.lower <= true) & (true <= board.upper)).sum())
        true_rank = bt.point_ranks(true)
        ranks_inside += int(((board.rank_best <= true_rank) & (true_rank <= board.rank_worst)).sum())
        total += 6
    # 240 intervals at 95%: the binomial 99% band is about [0.91, 0.98]; percentile intervals run a bit narrow.
    assert 0.88 <= inside / total <= 0.99
    # A rank range is at least as wide as the intervals imply, so the true rank is inside at least as often.
    assert ranks_inside / total >= 0.95


def test_it_resamples_outcomes_together_for_a_paired_interval() -> None:
    _, i, j, y = _simulate(2, n=300)
    human, same = bt.bootstrap(i, j, [y, y.copy()], 6, samples=30, seed=3)
    assert np.allclose(human, same)


def test_it_gives_rank_ranges_where_intervals_overlap() -> None:
    lower, upper = np.array([2.0, 1.5, -1.0]), np.array([3.0, 2.5, 0.0])
    best, worst = bt.rank_ranges(lower, upper)
    assert best.tolist() == [1, 1, 3]
    assert worst.tolist() == [2, 2, 3]


def test_it_values_comparisons_of_close_systems_over_settled_ones() -> None:
    theta = np.array([2.0, 0.1, 0.0, -2.0])
    i, j = np.triu_indices(4, 1)
    i, j = np.repeat(i, 10), np.repeat(j, 10)
    gain = bt.pair_information_gain(theta, bt.fisher_covariance(theta, i, j, 4))
    assert gain[1, 2] > gain[0, 3]
    assert gain[1, 2] == gain.max()
    assert np.allclose(gain, gain.T)
