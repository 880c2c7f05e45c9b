"""The one error model: every API error, DRF's own included, comes back as {"error": {...}}."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from annotate.errors import ApplicationError, exception_handler, field_errors, validation_error
from tests import factories

ERROR_KEYS = {"code", "message", "field", "details"}


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    return body["error"]


def test_it_answers_anonymous_requests_in_the_one_shape(db: None) -> None:
    response = APIClient().get("/api/v1/campaigns/1/agreement")
    assert response.status_code in (401, 403)
    error = _error(response)
    assert error["code"] == "not_authenticated" and error["field"] is None and error["message"]


def test_it_answers_annotators_on_staff_endpoints_with_permission_denied(bob: User) -> None:
    campaign = factories.make_campaign()
    client = APIClient()
    client.force_authenticate(bob)
    for url in (f"/api/v1/campaigns/{campaign.pk}/agreement", f"/api/v1/campaigns/{campaign.pk}/model-agreement"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert _error(response)["code"] == "permission_denied"


def test_it_answers_unknown_ids_with_not_found(alice: User) -> None:
    client = APIClient()
    client.force_authenticate(alice)
    for url in ("/api/v1/campaigns/987654/agreement", "/api/v1/exports/987654", "/api/v1/training-runs/987654"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert _error(response)["code"] == "not_found"


def test_it_answers_malformed_json_with_a_parse_error(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    campaign = factories.make_campaign()
    response = client.post(
        f"/api/v1/campaigns/{campaign.pk}/exports", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"


def test_it_answers_validation_errors_with_every_field_and_its_messages(alice: User) -> None:
    client = APIClient()
    client.force_authenticate(alice)
    campaign = factories.make_campaign()
    response = client.post(
        f"/api/v1/campaigns/{campaign.pk}/exports", {"min_confidence": "high", "seed": "x"}, format="json"
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid" and error["field"] in {"min_confidence", "seed"}
    assert set(error["details"]) == {"min_confidence", "seed"}
    assert all(isinstance(messages, list) and messages for messages in error["details"].values())
    assert error["message"].startswith(f"{error['field']}: ")


def test_it_turns_throttling_into_429_with_the_wait_and_retry_after() -> None:
    response = exception_handler(Throttled(wait=3), {})
    assert response is not None and response.status_code == 429
    assert response.data["error"]["code"] == "throttled" and response.data["error"]["details"] == {"wait_s": 3}
    assert response["Retry-After"] == "3"


def test_it_keeps_the_status_code_and_details_of_an_application_error() -> None:
    exc = ApplicationError("Too late.", code="too_late", status=409, field="when", details={"after_s": 2})
    response = exception_handler(exc, {})
    assert response is not None and response.status_code == 409
    assert response.data == {
        "error": {"code": "too_late", "message": "Too late.", "field": "when", "details": {"after_s": 2}}
    }


def test_it_leaves_unexpected_exceptions_to_django_as_500s() -> None:
    assert exception_handler(RuntimeError("boom"), {}) is None


def test_it_flattens_nested_validation_details_to_field_paths() -> None:
    detail = {"listened": {"A": [{}, ["Ensure this field has at least 2 elements."]]}, "alignment": ["Bad."]}
    assert field_errors(detail) == {
        "listened.A.1": ["Ensure this field has at least 2 elements."],
        "alignment": ["Bad."],
    }
    assert field_errors(["Whole body is wrong."]) == {"non_field_errors": ["Whole body is wrong."]}
    error = validation_error(field_errors(detail))
    assert (error.field, error.message) == ("listened", "listened.A.1: Ensure this field has at least 2 elements.")


@pytest.mark.django_db
def test_the_schema_documents_the_error_shape_once_and_every_api_uses_it(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    components = schema["components"]["schemas"]
    assert set(components["ErrorBody"]["properties"]) == ERROR_KEYS
    assert not any(name.endswith("Error") and name != "Error" for name in components), sorted(components)
    vote_400 = schema["paths"]["/api/v1/assignments/{assignment_id}/vote"]["post"]["responses"]["400"]
    export_404 = schema["paths"]["/api/v1/exports/{export_id}"]["get"]["responses"]["404"]
    for response in (vote_400, export_404):
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_it_answers_unknown_api_paths_and_methods_in_json_not_html(alice: User, settings) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(alice)
    for debug in (False, True):  # the catch-all answers even where Django would show its debug page
        settings.DEBUG = debug
        response = client.get("/api/v1/no-such-thing/42")
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert _error(response)["code"] == "not_found"
    response = client.delete("/api/v1/exports")
    assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"
    assert Client().get("/no-such-page/").status_code == 404  # pages keep Django's HTML 404


def test_it_answers_a_csrf_failure_on_an_api_path_in_json(bob: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post("/api/v1/campaigns/1/consent", data="{}", content_type="application/json")
    assert response.status_code == 403 and _error(response)["code"] in ("permission_denied", "csrf_failed")


def test_the_json_error_views_answer_in_the_one_shape(rf) -> None:  # type: ignore[no-untyped-def]
    from annotate import views

    for view, status in ((views.server_error, 500), (views.bad_request, 400), (views.page_not_found, 404)):
        response = view(rf.get("/api/v1/score"))
        body = json.loads(response.content)
        assert response.status_code == status and set(body["error"]) == ERROR_KEYS and body["error"]["message"]
    assert "html" in views.server_error(rf.get("/")).content.decode().lower()


def test_it_serves_clip_audio_to_staff_and_documents_it(alice: User, bob: User) -> None:
    clip = factories.make_clip()
    staff, annotator = APIClient(), APIClient()
    staff.force_authenticate(alice)
    annotator.force_authenticate(bob)
    response = staff.get(f"/api/v1/clips/{clip.pk}/audio", HTTP_ACCEPT="audio/*")
    assert response.status_code == 200 and response["Content-Type"].startswith("audio/")
    assert _error(staff.get("/api/v1/clips/987654/audio", HTTP_ACCEPT="audio/*"))["code"] == "not_found"
    assert _error(annotator.get(f"/api/v1/clips/{clip.pk}/audio"))["code"] == "permission_denied"
    schema = staff.get("/api/schema/?format=json").json()
    assert "audio/*" in schema["paths"]["/api/v1/clips/{clip_id}/audio"]["get"]["responses"]["200"]["content"]


def test_the_schema_documents_every_error_status_and_types_every_body(alice: User) -> None:
    client = APIClient()
    client.force_authenticate(alice)
    schema = client.get("/api/schema/?format=json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code in ("400", "401", "403", "404", "405", "429", "500"):
                assert code in operation["responses"], (method, path, code)
    untyped = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("additionalProperties") == {}:
                untyped.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")
    # Free-form by design: an error's details (per code) and a training run's config overrides.
    assert sorted(untyped) == [
        "/components/schemas/ErrorBody/properties/details",
        "/components/schemas/TrainingRunRequest/properties/config",
    ]
    job = schema["components"]["schemas"]["ScoringJobOutput"]["properties"]
    assert job["items"]["items"] == {"$ref": "#/components/schemas/ScoredItem"}
