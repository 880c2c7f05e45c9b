"""Adjudication: the staff page and GET/PUT/DELETE /api/v1/comparisons/{id}/adjudication; exports use the label."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotate.labeling.models import Adjudication
from tests import factories
from tests.exports.helpers import read_jsonl, run_export


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.EXPORT_ROOT = str(tmp_path / "exports")


def _url(comparison_id: int) -> str:
    return f"/api/v1/comparisons/{comparison_id}/adjudication"


def _disputed(bob, charlie):  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign()
    comparison = factories.make_comparison(campaign, modality="A")
    factories.make_vote(comparison, bob, alignment="a", musicality="b", alignment_confidence=5, feedback="A is on beat")
    factories.make_vote(comparison, charlie, alignment="b", musicality="a", musicality_confidence=1, feedback="B sings")
    return campaign, comparison


@pytest.mark.django_db
def test_it_shows_staff_the_votes_clips_and_reference(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    _, comparison = _disputed(bob, charlie)
    client.force_login(alice)

    body = client.get(_url(comparison.pk)).json()

    assert body["comparison"] == comparison.pk and body["adjudication"] is None
    assert [(v["annotator"], v["alignment"], v["alignment_confidence"], v["feedback"]) for v in body["votes"]] == [
        ("bob", "a", 5, "A is on beat"),
        ("charlie", "b", 3, "B sings"),
    ]
    assert body["tally"]["alignment"] == {"a": 1, "b": 1, "t": 0}
    assert body["clips"]["a"]["audio_url"] == f"/api/v1/clips/{comparison.clip_a_id}/audio"
    assert body["clips"]["reference"]["audio_url"] == f"/api/v1/clips/{comparison.instruction.reference_clip_id}/audio"
    assert client.get(body["clips"]["a"]["audio_url"]).status_code == 200
    page = client.get(f"/comparisons/{comparison.pk}/adjudicate/")
    assert page.status_code == 200
    assert b"A is on beat" in page.content and comparison.instruction.text.encode() in page.content


@pytest.mark.django_db
def test_it_sets_replaces_and_deletes_a_resolution(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    _, comparison = _disputed(bob, charlie)
    client.force_login(alice)
    put = {"alignment": "a", "musicality": "t", "note": "A follows the reference"}

    response = client.put(_url(comparison.pk), data=json.dumps(put), content_type="application/json")

    assert response.status_code == 200
    assert response.json()["adjudication"]["alignment"] == "a"
    assert response.json()["adjudication"]["decided_by"] == "alice"
    row = Adjudication.objects.get(comparison=comparison)
    assert (row.alignment_choice, row.musicality_choice, row.note) == ("a", "t", "A follows the reference")
    client.put(_url(comparison.pk), data=json.dumps({**put, "alignment": "b"}), content_type="application/json")
    assert Adjudication.objects.get(comparison=comparison).alignment_choice == "b"
    assert Adjudication.objects.count() == 1

    assert client.delete(_url(comparison.pk)).status_code == 204
    assert not Adjudication.objects.exists()
    assert client.delete(_url(comparison.pk)).status_code == 404


@pytest.mark.django_db
def test_it_refuses_bad_choices_and_unknown_comparisons(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    _, comparison = _disputed(bob, charlie)
    client.force_login(alice)

    bad = client.put(
        _url(comparison.pk), data=json.dumps({"alignment": "A", "musicality": "a"}), content_type="application/json"
    )

    assert bad.status_code == 400 and bad.json()["error"]["field"] == "alignment"
    assert client.get(_url(999_999)).status_code == 404
    assert not Adjudication.objects.exists()


@pytest.mark.django_db
def test_it_is_staff_only(client: Client, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    _, comparison = _disputed(bob, charlie)
    client.force_login(charlie)
    body = json.dumps({"alignment": "a", "musicality": "a"})

    assert client.get(_url(comparison.pk)).status_code == 403
    assert client.put(_url(comparison.pk), data=body, content_type="application/json").status_code == 403
    assert client.delete(_url(comparison.pk)).status_code == 403
    assert client.get(f"/comparisons/{comparison.pk}/adjudicate/").status_code == 403
    assert (
        client.post(f"/comparisons/{comparison.pk}/adjudicate/", {"alignment": "a", "musicality": "a"}).status_code
        == 403
    )
    assert not Adjudication.objects.exists()


@pytest.mark.django_db
def test_it_resolves_from_the_page_and_the_next_export_uses_the_label(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, comparison = _disputed(bob, charlie)
    client.force_login(alice)
    _, before = run_export(campaign, min_votes_per_comparison=1)
    assert read_jsonl(before / "comparisons.jsonl")[0]["preference-alignment"] == "both"  # 1:1

    response = client.post(
        f"/comparisons/{comparison.pk}/adjudicate/", {"alignment": "b", "musicality": "a", "note": "reference"}
    )

    assert response.status_code == 302
    _, after = run_export(campaign, min_votes_per_comparison=1)
    row = read_jsonl(after / "comparisons.jsonl")[0]
    assert (row["preference-alignment"], row["preference-musicality"], row["label_source"]) == (
        "model_b",
        "model_a",
        "adjudicated",
    )
    assert (row["votes_a-alignment"], row["votes_b-alignment"]) == (1, 1)  # the votes stay as cast
    client.post(f"/comparisons/{comparison.pk}/adjudicate/", {"action": "clear"})
    assert not Adjudication.objects.exists()


@pytest.mark.django_db
def test_the_agreement_page_links_disputes_to_the_resolution_page(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, comparison = _disputed(bob, charlie)
    client.force_login(alice)

    html = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()

    assert f'href="/comparisons/{comparison.pk}/adjudicate/"' in html
    assert "/admin/catalog/comparison/" not in html
