from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.exports.models import Export
from annotate.exports.selectors import export_dir_for
from tests.exports.conftest import Dataset
from tests.exports.helpers import read_jsonl


def test_it_exports_a_campaign_from_the_command_line(dataset: Dataset) -> None:
    out = io.StringIO()
    call_command(
        "export_campaign",
        dataset.campaign.name,
        "--seed",
        "3",
        "--test-size",
        "8",
        "--include-flagged",
        "--archive",
        "none",
        stdout=out,
    )
    export = Export.objects.get()
    assert export.status == "succeeded" and export.parameters["seed"] == 3
    assert f"Export {export.pk} written to {export_dir_for(export)}" in out.getvalue()
    rows = read_jsonl(export_dir_for(export) / "test.jsonl")
    assert len({row["comparison id"] for row in rows}) == 8
    assert json.loads(out.getvalue().splitlines()[1])["comparisons"]["test"] == 8


def test_it_fails_the_command_with_the_reason_for_impossible_parameters(dataset: Dataset) -> None:
    with pytest.raises(CommandError, match="test_size"):
        call_command("export_campaign", str(dataset.campaign.pk), "--test-size", "100", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no campaign"):
        call_command("export_campaign", "nope", stdout=io.StringIO())
    assert not Export.objects.exists()
