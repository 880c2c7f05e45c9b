from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from annotate.exports.models import Export
from annotate.exports.services import export_run
from tests.exports.conftest import Dataset


def test_it_links_the_export_page_from_the_campaign_card_for_staff_only(
    dataset: Dataset, alice: User, bob: User
) -> None:
    url = f"/campaigns/{dataset.campaign.pk}/exports/"
    staff = Client()
    staff.force_login(alice)
    assert url in staff.get("/").content.decode()
    annotator = Client()
    annotator.force_login(bob)
    assert url not in annotator.get("/").content.decode()


def test_it_forbids_the_export_page_to_annotators(dataset: Dataset, charlie: User) -> None:
    client = Client()
    client.force_login(charlie)
    url = f"/campaigns/{dataset.campaign.pk}/exports/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"seed": "1"}).status_code == 403
    assert not Export.objects.exists()


def test_it_creates_an_export_from_the_form_with_unticked_boxes_as_false(dataset: Dataset, alice: User) -> None:
    client = Client()
    client.force_login(alice)
    url = f"/campaigns/{dataset.campaign.pk}/exports/"
    form = {
        "seed": "9",
        "test_size": "",
        "test_fraction": "0.25",
        "validation_fraction": "0.1",
        "min_votes_per_comparison": "1",
        "min_confidence": "1",
        "date_from": "",
        "date_to": "",
        "exclude_gold": "on",
        "audio": "copy",
        "archive": "zip",
    }
    response = client.post(url, form)
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.parameters["seed"] == 9 and export.parameters["archive"] == "zip"
    assert export.parameters["balance_test"] is False and export.parameters["exclude_flagged_annotators"] is False
    assert export.parameters["exclude_gold"] is True and export.parameters["test_size"] is None
    export_run(export_id=export.pk)
    page = client.get(url).content.decode()
    assert f"/api/v1/exports/{export.pk}/download" in page and "Succeeded" in page


def test_it_shows_the_reason_when_the_form_asks_the_impossible(dataset: Dataset, alice: User) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post(f"/campaigns/{dataset.campaign.pk}/exports/", {"seed": "1", "test_size": "400"})
    assert response.status_code == 400
    assert "400 comparisons requested but only 16" in response.content.decode()
    assert not Export.objects.exists()
