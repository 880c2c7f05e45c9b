from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from rest_framework.authtoken.models import Token

from tests.agreement.conftest import vote_matrix

ROWS = ["abab.ab", "aabbbab", "abb.aba"]


@pytest.fixture
def voted_campaign(campaign, comparisons, annotators):
    vote_matrix(comparisons(7), annotators, ROWS)
    return campaign


def _url(campaign_id: int) -> str:
    return f"/api/v1/campaigns/{campaign_id}/agreement"


def test_it_returns_the_report_to_staff(client, alice, voted_campaign):
    client.force_login(alice)

    response = client.get(_url(voted_campaign.pk))

    assert response.status_code == 200
    body = response.json()
    reliability = np.array([[{"a": 0, "b": 1}.get(c, np.nan) for c in row] for row in ROWS])
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert abs(body["summary"]["alignment"]["alpha"]["value"] - expected) < 1e-9
    assert body["summary"]["vote_count"] == 19
    assert body["campaign"] == {"id": voted_campaign.pk, "name": voted_campaign.name}
    assert body["freshness"]["source"] == "live"
    assert {row["username"] for row in body["annotators"]} == {"rater0", "rater1", "rater2"}


def test_it_accepts_a_staff_token(client, voted_campaign):
    from tests import factories

    staff = factories.make_annotator("pipeline", is_staff=True)
    token = Token.objects.create(user=staff)

    response = client.get(_url(voted_campaign.pk), HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200


def test_it_refuses_annotators_and_anonymous(client, charlie, voted_campaign):
    assert client.get(_url(voted_campaign.pk)).status_code in (401, 403)
    client.force_login(charlie)
    response = client.get(_url(voted_campaign.pk))
    assert response.status_code == 403
    assert "summary" not in response.json()


def test_it_answers_404_for_an_unknown_campaign(client, alice, db):
    client.force_login(alice)
    response = client.get(_url(987654))
    assert response.status_code == 404


def test_it_applies_filters_and_rejects_bad_ones(client, alice, voted_campaign):
    client.force_login(alice)

    only_lyrics = client.get(_url(voted_campaign.pk), {"modality": "L"})
    bad_modality = client.get(_url(voted_campaign.pk), {"modality": "X"})
    bad_range = client.get(_url(voted_campaign.pk), {"since": "2026-05-02", "until": "2026-05-01"})
    today = client.get(_url(voted_campaign.pk), {"modality": "t", "since": "2000-01-01", "until": "2100-01-01"})

    assert only_lyrics.status_code == 200 and only_lyrics.json()["summary"]["vote_count"] == 0
    assert only_lyrics.json()["filters"]["modalities"] == ["L"]
    assert bad_modality.status_code == 400 and bad_modality.json()["error"]["field"] == "modality"
    assert bad_range.status_code == 400 and bad_range.json()["error"]["field"] == "until"
    assert bad_range.json()["error"]["code"] == "invalid_range"
    assert today.json()["summary"]["vote_count"] == 19


def test_it_is_documented_in_the_openapi_schema(client, alice):
    client.force_login(alice)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/campaigns/{campaign_id}/agreement"]["get"]
    assert operation["operationId"] == "campaign_agreement"
    assert {p["name"] for p in operation["parameters"]} >= {"campaign_id", "modality", "vocal", "since", "until"}
    assert "200" in operation["responses"]
