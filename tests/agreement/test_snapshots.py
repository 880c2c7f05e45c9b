from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from annotate.agreement.models import AgreementSnapshot
from annotate.agreement.selectors import campaign_agreement
from annotate.agreement.services import agreement_snapshot_refresh, agreement_snapshot_schedule
from tests import factories
from tests.agreement.conftest import vote_matrix


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def test_it_stores_a_snapshot_and_serves_it_for_large_campaigns(settings, campaign, comparisons, annotators):
    settings.AGREEMENT_LIVE_MAX_VOTES = 5
    items = comparisons(6)
    vote_matrix(items, annotators, ["abab.a", "aabbba"])

    snapshot = agreement_snapshot_refresh(campaign_id=campaign.pk)
    factories.make_vote(items[4], annotators[2])

    report = campaign_agreement(campaign=campaign)
    assert snapshot is not None and snapshot.vote_count == 11
    assert report["freshness"]["source"] == "snapshot"
    assert report["freshness"]["votes_since"] == 1
    assert report["summary"]["vote_count"] == 11  # the stored numbers, not a recomputation


def test_it_computes_live_for_small_campaigns_and_filtered_views(settings, campaign, comparisons, annotators):
    from annotate.agreement.selectors import AgreementFilters

    vote_matrix(comparisons(3), annotators, ["aba", "abb"])
    agreement_snapshot_refresh(campaign_id=campaign.pk)

    assert campaign_agreement(campaign=campaign)["freshness"]["source"] == "live"
    settings.AGREEMENT_LIVE_MAX_VOTES = 1
    filtered = campaign_agreement(campaign=campaign, filters=AgreementFilters(modalities=("T",)))
    assert filtered["freshness"]["source"] == "live"
    assert campaign_agreement(campaign=campaign)["freshness"]["source"] == "snapshot"


def test_it_debounces_scheduling_and_skips_small_campaigns(
    settings, campaign, comparisons, annotators, django_capture_on_commit_callbacks, monkeypatch
):
    from annotate.agreement import services

    queued: list[tuple] = []
    monkeypatch.setattr(
        services, "task_publish", lambda task, args, countdown, queue: queued.append((args, countdown, queue))
    )
    vote_matrix(comparisons(3), annotators, ["aba", "abb"])

    assert agreement_snapshot_schedule(campaign_id=campaign.pk) is False  # 6 votes: computed on request
    cache.clear()
    settings.AGREEMENT_LIVE_MAX_VOTES = 2
    settings.AGREEMENT_SNAPSHOT_DEBOUNCE_SECONDS = 7

    first = agreement_snapshot_schedule(campaign_id=campaign.pk)
    second = agreement_snapshot_schedule(campaign_id=campaign.pk)

    assert (first, second) == (True, False)
    assert queued == [([campaign.pk], 7, "default")]
    assert AgreementSnapshot.objects.get(campaign=campaign).refresh_requested_at is not None
    # The refresh clears the debounce key, so votes after it schedule again.
    agreement_snapshot_refresh(campaign_id=campaign.pk)
    assert agreement_snapshot_schedule(campaign_id=campaign.pk) is True
    assert AgreementSnapshot.objects.get(campaign=campaign).computed_at is not None


@pytest.mark.django_db(transaction=True)
def test_it_refreshes_the_snapshot_on_a_real_worker(celery_worker_process, settings):
    from annotate.agreement.tasks import agreement_snapshot_refresh_task

    campaign = factories.make_campaign(name="worker campaign")
    raters = [factories.make_annotator(f"w{i}") for i in range(2)]
    for comparison in [factories.make_comparison(campaign, seconds=1.0) for _ in range(5)]:
        for rater in raters:
            factories.make_vote(comparison, rater)

    agreement_snapshot_refresh_task.apply_async(args=[campaign.pk], queue="default")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snapshot = AgreementSnapshot.objects.filter(campaign=campaign, computed_at__isnull=False).first()
        if snapshot is not None:
            break
        time.sleep(0.2)
    assert snapshot is not None, "the worker never stored a snapshot"
    assert snapshot.vote_count == 10
    assert snapshot.report["summary"]["alignment"]["agreement_rate"] == 1.0
    assert snapshot.report["summary"]["alignment"]["alpha"]["status"] == "no_variation"


def test_it_offers_a_refresh_and_schedules_a_first_snapshot_for_large_campaigns(
    client, alice, settings, campaign, comparisons, annotators, monkeypatch
):
    from annotate.agreement import services

    queued: list[object] = []
    monkeypatch.setattr(services, "task_publish", lambda task, **kw: queued.append(kw))
    monkeypatch.setattr(services, "task_publish_on_commit", lambda task, **kw: queued.append(kw))
    settings.AGREEMENT_LIVE_MAX_VOTES = 3
    vote_matrix(comparisons(3), annotators, ["aba", "abb"])
    client.force_login(alice)

    page = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()
    assert "Refresh snapshot now" in page and "Computed live" in page
    assert len(queued) == 1  # the first snapshot was scheduled

    response = client.post(f"/campaigns/{campaign.pk}/agreement/refresh")
    assert response.status_code == 302 and len(queued) == 2
    assert AgreementSnapshot.objects.get(campaign=campaign).refresh_requested_at is not None

    agreement_snapshot_refresh(campaign_id=campaign.pk)
    page = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()
    assert "Stored snapshot computed" in page and "0</strong> votes since" in page


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_dashboard_working_and_says_so_when_the_broker_is_down(
    client, alice, settings, campaign, comparisons, annotators
):
    from tests.faults import dead_redis_url

    settings.AGREEMENT_LIVE_MAX_VOTES = 3
    vote_matrix(comparisons(3), annotators, ["aba", "abb"])
    settings.REDIS_URL = settings.CELERY_BROKER_URL = dead_redis_url()
    client.force_login(alice)

    page = client.get(f"/campaigns/{campaign.pk}/agreement/")
    assert page.status_code == 200  # the first-snapshot scheduling failed quietly; the live report shows
    response = client.post(f"/campaigns/{campaign.pk}/agreement/refresh", follow=True)
    assert response.status_code == 200
    assert "could not be queued" in response.content.decode()
    assert AgreementSnapshot.objects.get(campaign=campaign).refresh_requested_at is None
