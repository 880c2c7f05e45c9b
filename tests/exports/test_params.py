"""Export parameters: strict parsing and cross-checks, every bad one named. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from annotate.exports.params import ExportParameterError, ExportParameters


def test_it_fills_defaults_and_round_trips_through_json() -> None:
    params = ExportParameters.from_dict({"seed": 3, "date_from": "2026-05-01", "test_size": None})
    assert params.seed == 3 and params.date_from == dt.date(2026, 5, 1) and params.test_size is None
    assert ExportParameters.from_dict(params.to_dict()) == params


def test_it_names_every_bad_parameter_at_once() -> None:
    with pytest.raises(ExportParameterError) as caught:
        ExportParameters.from_dict({"seed": True, "test_fraction": "0.1", "colour": "blue"})
    errors = caught.value.errors
    assert errors == {"colour": "unknown parameter", "seed": "must be an integer", "test_fraction": "must be a number"}
    # The same reasons reach the API through the one error shape.
    assert caught.value.status == 400 and caught.value.code == "invalid"
    assert caught.value.details == {name: [reason] for name, reason in errors.items()}


def test_it_refuses_fractions_leaving_nothing_to_train_on() -> None:
    with pytest.raises(ExportParameterError) as caught:
        ExportParameters.from_dict({"test_fraction": 0.5, "validation_fraction": 0.5})
    assert caught.value.field == "validation_fraction"
