"""The onboarding gate on next-assignment, and the onboarding REST endpoints, through the HTTP client."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate.labeling.models import Assignment
from annotate.onboarding.models import ConsentRecord, Withdrawal
from tests.onboarding.test_services import complete_onboarding


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_it_refuses_real_work_with_a_403_naming_the_missing_step(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    response = _client(bob).get(f"/api/v1/campaigns/{onboarded_campaign.pk}/next-assignment")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "onboarding_required" and error["details"]["step"] == "consent"
    assert error["details"]["url"] == f"/campaigns/{onboarded_campaign.pk}/onboarding/consent/"
    assert "Consent" in error["message"]
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_it_reports_the_steps_and_records_consent(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    client = _client(bob)
    status = client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/onboarding").json()
    assert [s["name"] for s in status["steps"]] == ["consent", "instructions", "headphones", "practice"]
    assert (status["complete"], status["missing_step"], status["withdrawn"]) == (False, "consent", False)
    stale = client.post(f"/api/v1/campaigns/{onboarded_campaign.pk}/consent", {"version": "old"}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["field"] == "version"
    accepted = client.post(f"/api/v1/campaigns/{onboarded_campaign.pk}/consent", {"version": "2026-01"}, format="json")
    assert accepted.status_code == 201 and accepted.json()["version"] == "2026-01"
    assert ConsentRecord.objects.get(annotator=bob).version == "2026-01"
    after = client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/onboarding").json()
    assert after["missing_step"] == "instructions"
    next_step = client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/next-assignment").json()
    assert next_step["error"]["details"]["step"] == "instructions"


@pytest.mark.django_db
def test_it_hands_out_work_once_onboarded_and_stops_after_withdrawal(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    complete_onboarding(bob, onboarded_campaign)
    client = _client(bob)
    assert client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/next-assignment").json()["assignment"] is not None
    withdrawn = client.post(
        f"/api/v1/campaigns/{onboarded_campaign.pk}/withdrawal", {"reason": "moving on"}, format="json"
    )
    assert withdrawn.status_code == 201
    assert Withdrawal.objects.get(annotator=bob).reason == "moving on"
    again = client.post(f"/api/v1/campaigns/{onboarded_campaign.pk}/withdrawal", {}, format="json")
    assert again.status_code == 409
    refused = client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/next-assignment")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "withdrawn"
    assert client.get(f"/api/v1/campaigns/{onboarded_campaign.pk}/onboarding").json()["withdrawn"] is True


@pytest.mark.django_db
def test_it_keeps_charlies_state_separate_and_rejects_anonymous_callers(bob, charlie, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    complete_onboarding(bob, onboarded_campaign)
    assert (
        _client(charlie).get(f"/api/v1/campaigns/{onboarded_campaign.pk}/onboarding").json()["missing_step"]
        == "consent"
    )
    anonymous = APIClient().post(f"/api/v1/campaigns/{onboarded_campaign.pk}/withdrawal", {}, format="json")
    assert anonymous.status_code in (401, 403)
    assert not Withdrawal.objects.exists()
    unknown = _client(charlie).get("/api/v1/campaigns/999999/onboarding")
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_it_lets_an_annotator_withdraw_after_the_campaign_closed(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    onboarded_campaign.status = "closed"
    onboarded_campaign.save()
    response = _client(bob).post(f"/api/v1/campaigns/{onboarded_campaign.pk}/withdrawal", {}, format="json")
    assert response.status_code == 201
    assert Withdrawal.objects.filter(annotator=bob, campaign=onboarded_campaign, restored_at__isnull=True).exists()
    onboarded_campaign.status = "draft"
    onboarded_campaign.save()
    assert (
        _client(bob).post(f"/api/v1/campaigns/{onboarded_campaign.pk}/withdrawal", {}, format="json").status_code == 404
    )
