from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotate.catalog.models import Campaign
from annotate.exports.models import Export
from annotate.exports.selectors import export_dir_for
from annotate.exports.services import export_create, export_run


def run_export(campaign: Campaign, **parameters: Any) -> tuple[Export, Path]:
    """Create and run an export in-process, the way the management command does."""
    parameters.setdefault("exclude_flagged_annotators", False)
    export = export_create(campaign=campaign, requested_by=None, parameters=parameters, enqueue=False)
    export = export_run(export_id=export.pk)
    assert export.status == Export.Status.SUCCEEDED, export.error
    return export, export_dir_for(export)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
