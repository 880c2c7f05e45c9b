"""Export parameters: their types, defaults, parsing and cross-checks. Pure: no queries.

``ExportParameters.from_dict`` is the one parser, used by the API, the staff form, the command and
the worker (which re-reads the parameters stored on the Export row).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from annotate.errors import ApplicationError

AUDIO_MODES = ("hardlink", "copy")
ARCHIVE_FORMATS = ("tar.gz", "zip", "none")


class ExportParameterError(ApplicationError):
    """Parameters that can't be satisfied; ``errors`` maps a parameter name to the reason (a 400)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        reasons = "; ".join(f"{name}: {reason}" for name, reason in errors.items())
        first = next(iter(errors), None)
        super().__init__(
            f"Impossible export parameters: {reasons}",
            field=first if first != "filters" else None,
            details={name: [reason] for name, reason in errors.items()},
        )


@dataclass(frozen=True)
class ExportParameters:
    seed: int = 0
    # Split sizes count comparisons. test_size, when given, wins over test_fraction.
    test_size: int | None = None
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    balance_test: bool = True  # equal T/L/A/C, and within each equal instrumental/vocal
    group_by_reference: bool = False  # instructions sharing a reference clip stay in one split
    min_votes_per_comparison: int = 1
    min_confidence: int = 1  # a vote is kept when both its confidences reach this
    exclude_gold: bool = True
    exclude_attention_checks: bool = True
    exclude_flagged_annotators: bool = True
    date_from: dt.date | None = None  # inclusive, UTC
    date_to: dt.date | None = None  # inclusive, UTC
    audio: str = "hardlink"
    archive: str = "tar.gz"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportParameters:
        """Parse and check parameters; raise ExportParameterError naming every bad one."""
        names = {f.name for f in dataclasses.fields(cls)}
        errors = {key: "unknown parameter" for key in data if key not in names}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if data.get(f.name) is None:
                continue
            try:
                values[f.name] = _coerce(f.name, data[f.name], f.default)
            except (TypeError, ValueError) as exc:
                errors[f.name] = str(exc)
        if errors:
            raise ExportParameterError(errors)
        params = cls(**values)
        params._check()
        return params

    def _check(self) -> None:
        errors: dict[str, str] = {}
        if self.test_size is not None and self.test_size < 0:
            errors["test_size"] = "must be 0 or more"
        for name in ("test_fraction", "validation_fraction"):
            if not 0 <= getattr(self, name) < 1:
                errors[name] = "must be at least 0 and below 1"
        if self.test_size is None and self.test_fraction + self.validation_fraction >= 1:
            errors["validation_fraction"] = "test_fraction + validation_fraction must be below 1 (train needs data)"
        if self.min_votes_per_comparison < 1:
            errors["min_votes_per_comparison"] = "must be 1 or more"
        if not 1 <= self.min_confidence <= 5:
            errors["min_confidence"] = "must be between 1 and 5"
        if self.date_from and self.date_to and self.date_from > self.date_to:
            errors["date_to"] = "must not be before date_from"
        if self.audio not in AUDIO_MODES:
            errors["audio"] = f"must be one of {', '.join(AUDIO_MODES)}"
        if self.archive not in ARCHIVE_FORMATS:
            errors["archive"] = f"must be one of {', '.join(ARCHIVE_FORMATS)}"
        if errors:
            raise ExportParameterError(errors)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for name in ("date_from", "date_to"):
            values[name] = values[name].isoformat() if values[name] else None
        return values


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Strict typing: no silent bool-as-int, no truncated floats."""
    if name in ("date_from", "date_to"):
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        raise TypeError("must be a date (YYYY-MM-DD)")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("must be true or false")
        return value
    if name in ("test_fraction", "validation_fraction"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("must be a number")
        return float(value)
    if name in ("seed", "test_size", "min_votes_per_comparison", "min_confidence"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("must be an integer")
        return value
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value
