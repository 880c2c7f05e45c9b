"""The permission-checked campaign fetches: the only way a view or an API gets a campaign."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.catalog.models import Campaign
from annotate.catalog.selectors import campaign_get_for_annotator, campaign_get_for_staff, campaign_list_for_user
from annotate.errors import NotFoundError, PermissionDeniedError
from tests import factories


@pytest.mark.parametrize("status", [Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.CLOSED])
def test_it_gives_staff_any_campaign_whatever_its_status(alice: User, status: str) -> None:
    campaign = factories.make_campaign(status=status)
    assert campaign_get_for_staff(user=alice, campaign_id=campaign.pk) == campaign


def test_it_refuses_annotators_before_looking_the_campaign_up(bob: User, charlie: User) -> None:
    campaign = factories.make_campaign()
    for user in (bob, charlie, AnonymousUser()):
        for campaign_id in (campaign.pk, 987654):
            # The same 403 for a real and an unknown id: annotators can't probe which ids exist.
            with pytest.raises(PermissionDeniedError) as excinfo:
                campaign_get_for_staff(user=user, campaign_id=campaign_id)
            assert excinfo.value.status == 403 and excinfo.value.code == "permission_denied"


def test_it_answers_staff_404_for_an_unknown_campaign(alice: User) -> None:
    with pytest.raises(NotFoundError) as excinfo:
        campaign_get_for_staff(user=alice, campaign_id=987654)
    assert excinfo.value.status == 404 and "987654" in excinfo.value.message


def test_it_gives_annotators_and_staff_only_active_campaigns(alice: User, bob: User, charlie: User) -> None:
    active = factories.make_campaign(status=Campaign.Status.ACTIVE)
    for user in (alice, bob, charlie):
        assert campaign_get_for_annotator(user=user, campaign_id=active.pk) == active


@pytest.mark.parametrize("status", [Campaign.Status.DRAFT, Campaign.Status.CLOSED])
def test_it_hides_draft_and_closed_campaigns_from_listeners(alice: User, bob: User, status: str) -> None:
    hidden = factories.make_campaign(status=status)
    for user in (alice, bob):
        with pytest.raises(NotFoundError) as excinfo:
            campaign_get_for_annotator(user=user, campaign_id=hidden.pk)
        assert excinfo.value.message == "No such campaign open for listening."


def test_it_answers_anonymous_and_unknown_ids_alike(bob: User) -> None:
    active = factories.make_campaign()
    with pytest.raises(NotFoundError) as anonymous:
        campaign_get_for_annotator(user=AnonymousUser(), campaign_id=active.pk)
    with pytest.raises(NotFoundError) as unknown:
        campaign_get_for_annotator(user=bob, campaign_id=987654)
    assert anonymous.value.message == unknown.value.message


def test_its_errors_are_djangos_too_so_pages_answer_403_and_404(alice: User, bob: User) -> None:
    with pytest.raises(PermissionDenied):
        campaign_get_for_staff(user=bob, campaign_id=1)
    with pytest.raises(Http404):
        campaign_get_for_staff(user=alice, campaign_id=987654)


def test_it_lists_every_campaign_to_staff_and_active_ones_to_annotators(alice: User, bob: User) -> None:
    active = factories.make_campaign(status=Campaign.Status.ACTIVE)
    draft = factories.make_campaign(status=Campaign.Status.DRAFT)
    assert set(campaign_list_for_user(user=alice)) == {active, draft}
    assert set(campaign_list_for_user(user=bob)) == {active}
    assert set(campaign_list_for_user(user=AnonymousUser())) == {active}
