"""The system leaderboard: selector, API, page and command, with the reward model's board beside it."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from annotate.agreement.leaderboard import LeaderboardQuery, system_leaderboard
from annotate.catalog.models import Campaign, Comparison
from rm_service.models import ModelVersion, Prediction
from tests import factories

SYSTEMS = ("best", "good", "weak")


@pytest.fixture
def raters(db: None) -> list[User]:
    return [factories.make_annotator(f"lb-rater{n}") for n in range(12)]


def _board(
    campaign: Campaign, raters: list[User], *, wins: dict[tuple[str, str], int], **fields: Any
) -> list[Comparison]:
    """One comparison per system pair; of the 12 raters, ``wins[pair]`` choose the pair's first system."""
    made = []
    for (first, second), n_first in wins.items():
        comparison = factories.make_comparison(campaign, seconds=0.5, systems=(first, second), **fields)
        for n, rater in enumerate(raters):
            choice = "a" if n < n_first else "b"
            factories.make_vote(comparison, rater, alignment=choice, musicality="t" if n == 0 else choice)
        made.append(comparison)
    return made


WINS = {("best", "good"): 9, ("good", "weak"): 9, ("best", "weak"): 11}


def _predict(comparisons: list[Comparison], version: ModelVersion, prob_a: dict[tuple[str, str], float]) -> None:
    for c in comparisons:
        p = prob_a[(c.system_a, c.system_b)]
        Prediction.objects.create(
            comparison=c,
            model_version=version,
            alignment_a=p,
            alignment_b=0.0,
            musicality_a=p,
            musicality_b=0.0,
            alignment_choice="a" if p >= 0.5 else "b",
            musicality_choice="a" if p >= 0.5 else "b",
            alignment_prob_a=p,
            musicality_prob_a=p,
        )


def _query(campaign: Campaign, **fields: object) -> LeaderboardQuery:
    settings: dict[str, object] = {"bootstrap_samples": 50, "min_votes": 10, **fields}
    return LeaderboardQuery(campaign_ids=(campaign.pk,), **settings)  # type: ignore[arg-type]


def test_it_ranks_systems_by_their_wins(campaign: Campaign, raters: list[User]) -> None:
    _board(campaign, raters, wins=WINS)
    board = system_leaderboard(query=_query(campaign))
    systems = board["questions"]["alignment"]["systems"]
    assert [s["system"] for s in systems] == list(SYSTEMS)
    assert [s["human"]["rank"] for s in systems] == [1, 2, 3]
    best = systems[0]
    assert best["votes"] == 24 and best["wins"] == 20.0
    assert best["human"]["lower"] <= best["human"]["strength"] <= best["human"]["upper"]
    # Musicality has one tie per comparison: half a win each way.
    assert board["questions"]["musicality"]["systems"][0]["ties"] == 2
    assert board["model_version"] is None and board["questions"]["alignment"]["model"] is None


def test_it_leaves_systems_below_min_votes_unranked(campaign: Campaign, raters: list[User]) -> None:
    _board(campaign, raters, wins={**WINS, ("weak", "rare"): 6})
    rows = system_leaderboard(query=_query(campaign, min_votes=13))["questions"]["alignment"]["systems"]
    rare = next(s for s in rows if s["system"] == "rare")
    assert rare == {
        "system": "rare",
        "votes": 12,
        "wins": 6.0,
        "ties": 0,
        "ranked": False,
        "human": None,
        "model": None,
    }
    assert all(s["ranked"] for s in rows if s["system"] != "rare")


def test_it_puts_the_reward_model_board_and_kendall_tau_beside_it(campaign: Campaign, raters: list[User]) -> None:
    comparisons = _board(campaign, raters, wins=WINS)
    version = ModelVersion.objects.create(name="rm", checkpoint_path="/x", is_active=True)
    # The model prefers weak over good: it swaps ranks 2 and 3.
    _predict(comparisons, version, {("best", "good"): 0.8, ("good", "weak"): 0.2, ("best", "weak"): 0.7})
    board = system_leaderboard(query=_query(campaign))
    model = board["questions"]["alignment"]["model"]
    assert board["model_version"] == {"id": version.pk, "name": "rm"}
    assert model["comparisons_scored"] == 36
    assert model["kendall_tau"] == pytest.approx(1 / 3)
    assert model["kendall_tau_lower"] <= model["kendall_tau_upper"]
    assert {d["system"] for d in model["disagreements"]} == {"good", "weak"}
    ranks = {s["system"]: s["model"]["rank"] for s in board["questions"]["alignment"]["systems"]}
    assert ranks == {"best": 1, "weak": 2, "good": 3}


def test_it_filters_by_vocal_and_leaves_out_attention_checks(campaign: Campaign, raters: list[User]) -> None:
    _board(campaign, raters, wins=WINS)
    _board(campaign, raters, wins={("weak", "best"): 12}, is_attention_check=True)
    board = system_leaderboard(query=_query(campaign))
    assert board["questions"]["alignment"]["votes"] == 36
    from annotate.agreement.selectors import AgreementFilters

    vocal = system_leaderboard(query=_query(campaign, filters=AgreementFilters(vocal=True)))
    assert vocal["questions"]["alignment"]["votes"] == 0 and vocal["questions"]["alignment"]["systems"] == []


def test_it_pools_systems_by_name_across_campaigns(campaign: Campaign, raters: list[User]) -> None:
    _board(campaign, raters, wins=WINS)
    other = factories.make_campaign()
    _board(other, raters, wins={("best", "good"): 12})
    pooled = system_leaderboard(query=LeaderboardQuery(campaign_ids=None, bootstrap_samples=30, min_votes=10))
    assert pooled["campaigns"] is None
    best = pooled["questions"]["alignment"]["systems"][0]
    assert best["system"] == "best" and best["votes"] == 36


def test_it_serves_the_api_to_staff_only(campaign: Campaign, raters: list[User], alice: User, charlie: User) -> None:
    _board(campaign, raters, wins=WINS)
    url = f"/api/v1/campaigns/{campaign.pk}/leaderboard?bootstrap_samples=30&min_votes=5"
    client = Client()
    assert client.get(url).status_code in (401, 403)
    client.force_login(charlie)
    assert client.get(url).status_code == 403
    assert client.get("/api/v1/leaderboard").status_code == 403
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["campaigns"] == [campaign.pk] and body["min_votes"] == 5
    assert [s["system"] for s in body["questions"]["alignment"]["systems"]] == list(SYSTEMS)
    assert client.get("/api/v1/leaderboard?bootstrap_samples=20").status_code == 200
    assert client.get(url + "&min_votes=0").json()["error"]["field"] == "min_votes"
    assert client.get("/api/v1/campaigns/999999/leaderboard").status_code == 404


def test_it_shows_the_page_with_its_chart_to_staff_only(
    campaign: Campaign, raters: list[User], alice: User, charlie: User
) -> None:
    comparisons = _board(campaign, raters, wins=WINS)
    version = ModelVersion.objects.create(name="rm", checkpoint_path="/x", is_active=True)
    _predict(comparisons, version, {("best", "good"): 0.8, ("good", "weak"): 0.2, ("best", "weak"): 0.7})
    client = Client()
    client.force_login(charlie)
    assert client.get(f"/campaigns/{campaign.pk}/leaderboard/").status_code == 403
    assert client.get("/leaderboard/").status_code == 403
    client.force_login(alice)
    page = client.get(f"/campaigns/{campaign.pk}/leaderboard/?min_votes=5&bootstrap_samples=20")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg class="chart"') == 2 and "best" in html and "<title>best (human)" in html
    assert "<title>weak (model)" in html and "Kendall" in html and "humans #3, model #2" in html
    assert client.get("/leaderboard/?modality=X").status_code == 200  # a bad filter shows its error, not a 500


def test_it_prints_the_leaderboard_from_the_command(campaign: Campaign, raters: list[User]) -> None:
    _board(campaign, raters, wins=WINS)
    out = StringIO()
    call_command("leaderboard", str(campaign.pk), "--min-votes", "5", "--bootstrap-samples", "20", stdout=out)
    text = out.getvalue()
    assert "alignment: 36 votes" in text and text.index("best") < text.index("weak")
    out = StringIO()
    call_command("leaderboard", "--all", "--json", "--bootstrap-samples", "20", stdout=out)
    assert json.loads(out.getvalue())["campaigns"] is None
