"""Assignment strategies: the order they hand comparisons out in, and the overlap target under each."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from annotate.catalog.models import AssignmentStrategy, Campaign, Comparison
from annotate.labeling.models import Assignment
from annotate.labeling.services import assignment_next
from annotate.labeling.strategies import (
    STRATEGIES,
    order_by_priority,
    order_candidates,
    outcome_uncertainty,
)
from rm_service.models import ModelVersion, Prediction
from tests import factories
from tests.labeling.conftest import ask_at_once


def _predict(comparison: Comparison, version: ModelVersion, prob_a: float) -> None:
    choice = "a" if prob_a >= 0.5 else "b"
    Prediction.objects.create(
        comparison=comparison,
        model_version=version,
        alignment_a=prob_a,
        alignment_b=0.0,
        musicality_a=prob_a,
        musicality_b=0.0,
        alignment_choice=choice,
        musicality_choice=choice,
        alignment_prob_a=prob_a,
        musicality_prob_a=prob_a,
    )


def _campaign(strategy: str, **fields: Any) -> Campaign:
    return factories.make_campaign(
        assignment_strategy=strategy, min_listen_seconds=1.0, min_listen_fraction=None, **fields
    )


def test_it_offers_every_strategy_of_the_field() -> None:
    assert set(STRATEGIES) == set(AssignmentStrategy.values)


def test_it_rates_an_even_expected_outcome_most_uncertain() -> None:
    u = outcome_uncertainty(np.array([0.5, 0.95, 0.95, 0.5]), np.array([0.0, 0.0, 2.0, 3.0]), np.array([0, 0, 4, 3]))
    assert u[0] == 1.0
    # A confident model is less uncertain, but four split votes overrule it.
    assert u[1] < u[2]
    assert u[3] < u[0]


def test_it_keeps_protected_items_in_place() -> None:
    assert order_by_priority([1, 2, 3, 4], [0.1, 0.0, 0.9, 0.5], protected={2}) == [3, 2, 4, 1]


def test_it_leaves_the_balanced_order_alone(db: None, bob: User) -> None:
    campaign = _campaign(AssignmentStrategy.BALANCED)
    assert order_candidates(campaign, bob, [5, 3, 9]) == [5, 3, 9]


def test_it_puts_small_model_margins_and_split_votes_first(db: None, bob: User) -> None:
    campaign = _campaign(AssignmentStrategy.UNCERTAIN, overlap_target=5)
    sure, close, split, gold = (factories.make_comparison(campaign) for _ in range(4))
    Comparison.objects.filter(pk=gold.pk).update(gold_alignment="a")
    version = ModelVersion.objects.create(name="rm", checkpoint_path="/x", is_active=True)
    for comparison, prob in ((sure, 0.97), (close, 0.7), (split, 0.9), (gold, 0.5)):
        _predict(comparison, version, prob)
    for n, choice in enumerate("abab"):
        factories.make_vote(split, factories.make_annotator(f"split{n}"), alignment=choice, musicality=choice)
    order = order_candidates(campaign, bob, [gold.pk, sure.pk, close.pk, split.pk])
    # Gold keeps its place; then the split one (0.9 prior, 2:2 votes: 0.63 expected), the 0.7 one, the sure one.
    assert order == [gold.pk, split.pk, close.pk, sure.pk]


def test_it_puts_pairs_of_close_systems_first_when_informative(db: None, bob: User) -> None:
    campaign = _campaign(AssignmentStrategy.INFORMATIVE, overlap_target=30)
    settled = factories.make_comparison(campaign, systems=("strong", "weak"))
    doubtful = factories.make_comparison(campaign, systems=("mid1", "mid2"))
    bridge = factories.make_comparison(campaign, systems=("strong", "mid1"))
    bridge2 = factories.make_comparison(campaign, systems=("mid2", "weak"))
    raters = [factories.make_annotator(f"inf{n}") for n in range(20)]
    for n, rater in enumerate(raters):
        factories.make_vote(settled, rater, alignment="a", musicality="a")
        factories.make_vote(doubtful, rater, alignment="ab"[n % 2], musicality="ab"[n % 2])
        factories.make_vote(bridge, rater, alignment="a" if n < 16 else "b", musicality="a" if n < 16 else "b")
        factories.make_vote(bridge2, rater, alignment="a" if n < 16 else "b", musicality="a" if n < 16 else "b")
    cache.delete(f"labeling:strategy:informative:{campaign.pk}")
    order = order_candidates(campaign, bob, [settled.pk, bridge.pk, doubtful.pk])
    assert order[0] == doubtful.pk
    assert sorted(order) == sorted([settled.pk, bridge.pk, doubtful.pk])


def test_it_hands_out_the_uncertain_comparison_even_with_more_votes(db: None, bob: User) -> None:
    campaign = _campaign(AssignmentStrategy.UNCERTAIN, overlap_target=3)
    version = ModelVersion.objects.create(name="rm", checkpoint_path="/x", is_active=True)
    fresh_but_sure = factories.make_comparison(campaign)
    voted_and_split = factories.make_comparison(campaign)
    _predict(fresh_but_sure, version, 0.99)
    _predict(voted_and_split, version, 0.5)
    factories.make_vote(voted_and_split, factories.make_annotator(), alignment="a", musicality="b")
    assignment = assignment_next(annotator=bob, campaign=campaign, rng_seed=1)
    assert assignment is not None and assignment.comparison_id == voted_and_split.pk
    # Balanced would have given the comparison without votes.
    Campaign.objects.filter(pk=campaign.pk).update(assignment_strategy=AssignmentStrategy.BALANCED)
    Assignment.objects.all().delete()
    campaign.refresh_from_db()
    assignment = assignment_next(annotator=bob, campaign=campaign, rng_seed=1)
    assert assignment is not None and assignment.comparison_id == fresh_but_sure.pk


def test_it_still_hands_out_gold_under_the_informative_strategy(db: None, bob: User) -> None:
    campaign = _campaign(AssignmentStrategy.INFORMATIVE, overlap_target=2)
    factories.make_comparison(campaign, systems=("x", "y"), gold_alignment="a", gold_musicality="b")
    assignment = assignment_next(annotator=bob, campaign=campaign, rng_seed=1)
    assert assignment is not None and assignment.comparison.is_gold


@pytest.mark.parametrize("strategy", AssignmentStrategy.values)
@pytest.mark.django_db(transaction=True)
def test_it_never_exceeds_the_overlap_target_under_concurrency(strategy: str) -> None:
    """Twelve annotators ask at once, each on its own connection, for 3 comparisons x overlap 2 = 6 slots."""
    campaign = _campaign(strategy, overlap_target=2)
    comparisons = [factories.make_comparison(campaign, systems=(f"s{n}", f"s{n + 1}")) for n in range(3)]
    version = ModelVersion.objects.create(name=f"rm-{strategy}", checkpoint_path="/x", is_active=True)
    for comparison, prob in zip(comparisons, (0.5, 0.7, 0.9), strict=True):
        _predict(comparison, version, prob)
    factories.make_vote(comparisons[0], factories.make_annotator(), alignment="a", musicality="a")
    annotators = [factories.make_annotator() for _ in range(12)]
    results, errors = ask_at_once(campaign, annotators, timeout_s=60)
    assert not errors, errors
    assert len(results) == len(annotators)
    for comparison in comparisons:
        live = Assignment.objects.filter(comparison=comparison, status=Assignment.Status.LIVE).count()
        assert live + comparison.votes.count() <= 2, f"{strategy}: comparison {comparison.pk} over the target"
    # Every free slot went to someone: 6 slots less the one vote.
    assert sum(r is not None for r in results) == 5
