"""The API against its own schema: schemathesis generates requests for every operation and checks the answers.

It runs against a live server (pytest-django's ``live_server``), once as staff (alice) and once as an
annotator (bob), each with a token, with a bounded number of examples per operation. Every answer must be
no server error, a documented status code and content type, and a body that matches the schema; a request
the schema calls valid must not be refused as invalid. The counts are printed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))  # per operation and role
SERVER_ERRORS = (not_a_server_error,)
SCHEMA_CHECKS = (
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)
CHECKS = [*SERVER_ERRORS, *SCHEMA_CHECKS, positive_data_acceptance]


@dataclass
class Tally:
    requests: int = 0
    operations: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # check -> failing requests
    examples: dict[str, list[str]] = field(default_factory=dict)  # check -> a few failures, for the message
    unavailable: int = 0  # documented 503s: no reward-model worker or broker in this test
    beyond_schema: int = 0  # documented 400s on what a schema cannot state (BEYOND_SCHEMA_CODES)

    def count(self, name: str) -> int:
        return self.failures[name]


def run_schemathesis(base_url: str, token: str) -> Tally:
    headers = {"Authorization": f"Token {token}"}
    raw = requests.get(f"{base_url}/api/schema/?format=json", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    session = requests.Session()
    tally = Tally()
    for result in schema.get_all_operations():
        tally.operations += 1
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis can't read is a schema defect
        exercise(result.ok(), base_url=base_url, headers=headers, session=session, tally=tally)
    return tally


def exercise(
    operation: Any, *, base_url: str, headers: dict[str, str], session: requests.Session, tally: Tally
) -> None:
    """``EXAMPLES`` generated requests for one operation, each checked; failures tallied by check."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
        tally.requests += 1
        checks = CHECKS
        if response.status_code == 503 and _error_code(response) in UNAVAILABLE_CODES:
            # No rm worker runs here, by design: a documented 503 in the Error shape is the right answer.
            tally.unavailable += 1
            checks = [*SCHEMA_CHECKS]
        elif response.status_code == 400 and _error_code(response) in BEYOND_SCHEMA_CODES:
            # What is inside an uploaded file (an archive that is not one, or an unsafe one) and how two fields
            # relate (a date range that ends before it starts) are beyond what a schema can say: a documented 400
            # in the Error shape with its own stable code is the right answer.
            tally.beyond_schema += 1
            checks = [*SERVER_ERRORS, *SCHEMA_CHECKS]
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                name = type(failure).__name__
                tally.failures[name] += 1
                detail = f"{operation.label} -> {response.status_code} {response.text[:300]}: {failure.title}"
                if len(tally.examples.setdefault(name, [])) < 5:
                    tally.examples[name].append(detail)

    run()


UNAVAILABLE_CODES = {"rm_unavailable", "broker_unavailable"}
BEYOND_SCHEMA_CODES = {"archive_rejected", "invalid_range"}


def _error_code(response: Any) -> str:
    try:
        return str(json.loads(response.content)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


SERVER_ERROR_NAMES = {"ServerError"}
VALID_REJECTED_NAMES = {"RejectedPositiveData"}


def summarise(role: str, tally: Tally) -> tuple[int, int, int]:
    server = sum(n for name, n in tally.failures.items() if name in SERVER_ERROR_NAMES)
    rejected = sum(n for name, n in tally.failures.items() if name in VALID_REJECTED_NAMES)
    schema = sum(tally.failures.values()) - server - rejected
    print(
        f"schemathesis as {role}: {tally.operations} operations, {tally.requests} requests "
        f"({EXAMPLES} examples per operation): {server} server errors, {schema} schema violations, "
        f"{rejected} valid requests rejected; {tally.unavailable} documented 503s (no rm worker); "
        f"{tally.beyond_schema} refused for what a schema can't say (file content, field relations); "
        f"by check: {dict(tally.failures)}"
    )
    for examples in tally.examples.values():
        for example in examples:
            print(f"  e.g. {example}")
    return server, schema, rejected


@pytest.fixture
def seeded(alice: User, bob: User, settings) -> None:  # type: ignore[no-untyped-def]
    """Something for ids to find: an active campaign with comparisons and one vote of bob's.

    No reward-model worker runs here, whatever an earlier test left in the cache: the heartbeat is read
    from a key no worker writes, so every model operation answers its documented 503 and nothing is queued.
    """
    settings.RM_WORKER_HEARTBEAT_KEY = "rm_service:schemathesis:no-worker-writes-this"
    campaign = factories.make_campaign(name="Schemathesis")
    comparison = factories.make_comparison(campaign, seconds=0.5)
    factories.make_comparison(campaign, seconds=0.5)
    factories.make_vote(comparison, bob)


@pytest.mark.parametrize("role", ["staff", "annotator"])
def test_the_api_answers_as_its_schema_says(live_server, seeded, alice: User, bob: User, role: str) -> None:  # type: ignore[no-untyped-def]
    user = alice if role == "staff" else bob
    token = Token.objects.get_or_create(user=user)[0].key
    tally = run_schemathesis(live_server.url, token)
    server, schema, rejected = summarise(role, tally)
    assert tally.requests >= tally.operations >= 20
    assert (server, schema, rejected) == (0, 0, 0), tally.examples
