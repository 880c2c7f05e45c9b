from __future__ import annotations

import re

from tests import factories
from tests.agreement.conftest import vote_matrix


def test_it_shows_the_dashboard_to_staff(client, alice, campaign, comparisons, annotators):
    items = comparisons(6)
    vote_matrix(items, annotators, ["abab.a", "aabbba", "abbbab"], swapped=True)
    client.force_login(alice)

    response = client.get(f"/campaigns/{campaign.pk}/agreement/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Krippendorff" in html and 'data-alpha-status="ok"' in html
    assert html.count("<svg") == 4
    assert 'id="annotator-table"' in html and "rater2" in html
    assert f"/comparisons/{items[1].pk}/adjudicate/" in html  # split b:a:b
    assert f"/comparisons/{items[0].pk}/adjudicate/" not in html  # unanimous
    assert "Computed live" in html


def test_it_says_when_votes_do_not_overlap(client, alice, campaign, comparisons, annotators):
    vote_matrix(comparisons(2), annotators, ["ab"])
    client.force_login(alice)

    html = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()

    assert "not enough overlapping votes" in html
    assert not re.search(r"\bnan\b", html, flags=re.IGNORECASE)  # as a word: a CSRF token may hold "nan"


def test_it_refuses_annotators(client, charlie, campaign):
    client.force_login(charlie)
    assert client.get(f"/campaigns/{campaign.pk}/agreement/").status_code == 403


def test_it_links_the_dashboard_from_the_home_page_for_staff_only(client, alice, bob, campaign):
    client.force_login(alice)
    assert f"/campaigns/{campaign.pk}/agreement/" in client.get("/").content.decode()
    client.force_login(bob)
    assert f"/campaigns/{campaign.pk}/agreement/" not in client.get("/").content.decode()


def test_it_escapes_usernames_in_charts(client, alice, campaign, comparisons):
    sneaky = factories.make_annotator("<b>x</b>")
    for comparison in comparisons(2):
        factories.make_vote(comparison, sneaky)
    client.force_login(alice)

    html = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()

    assert "<b>x</b>" not in html
    assert re.search(r"&lt;b&gt;x&lt;/b&gt;", html)


def test_it_explains_low_alpha_beside_high_agreement(client, alice, campaign, comparisons, annotators):
    # Clip A wins almost everywhere: 10 of 12 comparisons agree, yet alpha is about zero.
    vote_matrix(comparisons(12), annotators, ["aaaaaaaaaaaa", "aaaaaaaaaabb"])
    client.force_login(alice)

    html = client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()

    assert "Observed agreement (paired votes)" in html and "Expected by chance" in html
    assert "83.3%" in html  # observed: 10 of 12 pairs
    assert html.count('class="prevalence-note"') == 2  # both questions
    assert "92% of paired votes chose clip_a" in html and "83% observed agreement" in html


def test_staff_pages_say_when_votes_are_simulated(client, alice, bob, campaign, comparisons):
    from annotate.agreement.services import synthetic_votes_seed

    items = comparisons(3)
    client.force_login(alice)
    assert "Simulated votes" not in client.get(f"/campaigns/{campaign.pk}/agreement/").content.decode()
    factories.make_vote(items[0], bob)
    added = synthetic_votes_seed(campaign_id=campaign.pk, annotators=4, overlap=3)

    for url in (
        f"/campaigns/{campaign.pk}/agreement/",
        f"/campaigns/{campaign.pk}/exports/",
        f"/rm/campaigns/{campaign.pk}/",
        f"/rm/campaigns/{campaign.pk}/agreement/",
        f"/campaigns/{campaign.pk}/people/",
    ):
        html = client.get(url).content.decode()
        assert f"<strong>Simulated votes:</strong> {added} of the {added + 1} votes" in html, url
