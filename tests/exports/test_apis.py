from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.exports.models import Export
from annotate.exports.services import export_run
from tests.exports.conftest import Dataset


def client_for(user: User | None, *, token: bool = False) -> APIClient:
    client = APIClient()
    if user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    elif user is not None:
        client.force_login(user)
    return client


def test_it_queues_an_export_for_staff_and_reports_it(dataset: Dataset, alice: User) -> None:
    response = client_for(alice).post(
        f"/api/v1/campaigns/{dataset.campaign.pk}/exports",
        {"seed": 4, "test_size": 8, "validation_fraction": 0.25, "exclude_flagged_annotators": False},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    export = Export.objects.get()
    assert body["id"] == export.pk and body["status"] == "queued" and body["download_url"] is None
    assert export.parameters["seed"] == 4 and export.parameters["test_size"] == 8
    assert export.requested_by == alice and export.campaign == dataset.campaign


def test_it_accepts_a_staff_token(dataset: Dataset, alice: User) -> None:
    response = client_for(alice, token=True).post(f"/api/v1/campaigns/{dataset.campaign.pk}/exports", {}, format="json")
    assert response.status_code == 202
    assert Export.objects.count() == 1


@pytest.mark.parametrize("token", [False, True])
def test_it_forbids_annotators(dataset: Dataset, charlie: User, token: bool) -> None:
    client = client_for(charlie, token=token)
    assert client.post(f"/api/v1/campaigns/{dataset.campaign.pk}/exports", {}, format="json").status_code == 403
    assert not Export.objects.exists()
    export = Export.objects.create(campaign=dataset.campaign, parameters={})
    for url in (
        f"/api/v1/exports/{export.pk}",
        f"/api/v1/exports/{export.pk}/download",
        f"/api/v1/exports/{export.pk}/files/votes.jsonl",
        f"/api/v1/exports?campaign={dataset.campaign.pk}",
    ):
        assert client.get(url).status_code == 403, url


def test_it_refuses_anonymous_requests(dataset: Dataset) -> None:
    response = client_for(None).post(f"/api/v1/campaigns/{dataset.campaign.pk}/exports", {}, format="json")
    assert response.status_code in (401, 403)
    assert not Export.objects.exists()


def test_it_answers_400_with_the_reason_for_impossible_parameters(dataset: Dataset, alice: User) -> None:
    client = client_for(alice)
    url = f"/api/v1/campaigns/{dataset.campaign.pk}/exports"
    too_big = client.post(url, {"test_size": 500}, format="json")
    assert too_big.status_code == 400
    assert too_big.json()["error"]["field"] == "test_size"
    assert "500 comparisons requested but only 16" in too_big.json()["error"]["details"]["test_size"][0]
    bad_ratio = client.post(url, {"test_fraction": 0.7, "validation_fraction": 0.4}, format="json")
    assert bad_ratio.status_code == 400 and "below 1" in bad_ratio.json()["error"]["details"]["validation_fraction"][0]
    wrong_type = client.post(url, {"min_confidence": "high"}, format="json")
    assert wrong_type.status_code == 400 and "min_confidence" in wrong_type.json()["error"]["details"]
    unknown = client.post(url, {"shuffle": True}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "code": "invalid",
        "message": "shuffle: unknown parameter",
        "field": "shuffle",
        "details": {"shuffle": ["unknown parameter"]},
    }
    assert not Export.objects.exists()


def test_it_answers_404_for_an_unknown_campaign_or_export(alice: User) -> None:
    client = client_for(alice)
    assert client.post("/api/v1/campaigns/999999/exports", {}, format="json").status_code == 404
    assert client.get("/api/v1/exports/999999").status_code == 404


def test_it_shows_progress_then_serves_the_archive_and_files(dataset: Dataset, alice: User) -> None:
    client = client_for(alice)
    created = client.post(
        f"/api/v1/campaigns/{dataset.campaign.pk}/exports", {"exclude_flagged_annotators": False}, format="json"
    ).json()
    assert client.get(f"/api/v1/exports/{created['id']}/download").status_code == 409
    export_run(export_id=created["id"])
    detail = client.get(created["detail_url"]).json()
    assert detail["status"] == "succeeded" and detail["progress"] == 1.0
    assert sum(detail["summary"]["votes"].values()) == 48
    download = client.get(detail["download_url"])
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.getvalue()), mode="r:gz") as tar:
        assert f"export-{created['id']}/votes.jsonl" in tar.getnames()
    votes = client.get(f"/api/v1/exports/{created['id']}/files/votes.jsonl")
    assert votes.status_code == 200
    assert len(votes.getvalue().splitlines()) == 48
    assert client.get(f"/api/v1/exports/{created['id']}/files/..%2Fsecret").status_code == 404
    listed = client.get(f"/api/v1/exports?campaign={dataset.campaign.pk}").json()
    assert [item["id"] for item in listed] == [created["id"]]


def test_it_says_when_an_export_has_no_archive(dataset: Dataset, alice: User) -> None:
    client = client_for(alice)
    created = client.post(
        f"/api/v1/campaigns/{dataset.campaign.pk}/exports",
        {"archive": "none", "exclude_flagged_annotators": False},
        format="json",
    ).json()
    export_run(export_id=created["id"])
    response = client.get(f"/api/v1/exports/{created['id']}/download")
    assert response.status_code == 404 and "without an archive" in json.dumps(response.json())
    assert client.get(f"/api/v1/exports/{created['id']}/files/manifest.json").status_code == 200
