from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.agreement.selectors import agreement_summary, annotator_quality, campaign_votes
from annotate.agreement.services import SYNTHETIC_FEEDBACK, synthetic_votes_seed
from annotate.labeling.models import Vote
from tests.agreement.conftest import vote_matrix


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("agreement", *args, stdout=out)
    return out.getvalue()


def test_it_prints_tables_by_name_or_id(campaign, comparisons, annotators):
    # Krippendorff's binary worked example again: alpha = 2/21 = 0.095.
    vote_matrix(comparisons(10), annotators, ["abaaaaaaba", "bbbaabaaaa"])

    by_name, by_id = _run(campaign.name), _run(str(campaign.pk))

    for text in (by_name, by_id):
        assert "Krippendorff alpha" in text
        assert "0.095 [" in text
        assert "60.0%" in text  # 6 of 10 pairs agree
        assert "rater0" in text and "rater1" in text


def test_it_prints_json_identical_in_shape_to_the_api(campaign, comparisons, annotators):
    vote_matrix(comparisons(10), annotators, ["abaaaaaaba", "bbbaabaaaa"])
    report = json.loads(_run(campaign.name, "--json", "--modality", "T"))
    assert report["summary"]["alignment"]["alpha"]["value"] == pytest.approx(2 / 21, abs=1e-12)
    assert report["filters"]["modalities"] == ["T"]


def test_it_explains_unknown_campaigns_and_bad_filters(campaign):
    with pytest.raises(CommandError, match="No campaign named or numbered 'nope'"):
        _run("nope")
    with pytest.raises(CommandError, match="Unknown modality"):
        _run(campaign.name, "--modality", "Z")


def test_it_seeds_synthetic_votes_that_show_quality_problems(campaign, comparisons):
    comparisons(12)

    added = synthetic_votes_seed(campaign_id=campaign.pk, annotators=8, seed=3, overlap=6)
    again = synthetic_votes_seed(campaign_id=campaign.pk, annotators=8, seed=3, overlap=6)

    assert added == 72 and again == 0
    votes = campaign_votes(campaign_id=campaign.pk)
    assert set(votes.values_list("feedback", flat=True)) == {SYNTHETIC_FEEDBACK}
    assert all(name.startswith("synthetic-annotator-") for name in votes.values_list("annotator__username", flat=True))
    assert votes.values("created_at__date").distinct().count() > 1
    rows = {row.username: row for row in annotator_quality(votes=votes)}
    straight = rows["synthetic-annotator-8"]
    assert straight.left_fraction == 1.0 and "same_side" in straight.flags
    assert agreement_summary(votes=votes, bootstrap_samples=0)["alignment"]["alpha"]["status"] == "ok"


def test_it_seeds_through_the_command(campaign, comparisons):
    comparisons(3)
    out = io.StringIO()
    call_command("seed_votes", str(campaign.pk), "--annotators", "4", "--seed", "1", stdout=out)
    assert "synthetic" in out.getvalue()
    assert Vote.objects.filter(comparison__campaign=campaign).count() == 9
