"""REST for annotators: the same operations the listening page uses (session + CSRF, or a token)."""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.catalog.selectors import campaign_get_for_annotator, comparison_get_for_staff
from annotate.errors import NotFoundError, error_response
from annotate.labeling.models import Skip, Vote
from annotate.labeling.selectors import annotator_progress, assignment_payload, comparison_dispute
from annotate.labeling.services import (
    CLIENT_TIME_MAX_S,
    FEEDBACK_MAX_CHARS,
    adjudication_delete,
    adjudication_set,
    assignment_next,
    skip_submit,
    vote_submit,
)
from annotate.permissions import CanAnnotate, IsStaff, request_user

_ERROR = error_response()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()
    remaining = serializers.IntegerField()
    total = serializers.IntegerField()
    campaign_votes = serializers.IntegerField()
    campaign_votes_target = serializers.IntegerField()


class _ClipSerializer(serializers.Serializer):
    audio_url = serializers.CharField()
    duration_s = serializers.FloatField()
    required_listen_s = serializers.FloatField()
    peaks = serializers.ListField(child=serializers.FloatField())


class _ReferenceSerializer(serializers.Serializer):
    audio_url = serializers.CharField()
    duration_s = serializers.FloatField()
    peaks = serializers.ListField(child=serializers.FloatField())


class AssignmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    campaign = inline_serializer(
        "AssignmentCampaign",
        {
            "id": serializers.IntegerField(),
            "name": serializers.CharField(),
            "feedback_required": serializers.BooleanField(),
        },
    )
    instruction = inline_serializer(
        "AssignmentInstruction",
        {
            "prompt": serializers.CharField(),
            "lyrics": serializers.CharField(),
            "reference": _ReferenceSerializer(allow_null=True),
        },
    )
    clips = inline_serializer("AssignmentClips", {"A": _ClipSerializer(), "B": _ClipSerializer()})
    vote_url = serializers.CharField()
    skip_url = serializers.CharField()
    next_url = serializers.CharField()


class AssignmentNextApi(APIView):
    """Reserve (or resume) the caller's next comparison in a campaign."""

    permission_classes = [IsAuthenticated, CanAnnotate]

    @extend_schema_serializer(component_name="AssignmentNextOutput")
    class OutputSerializer(serializers.Serializer):
        assignment = AssignmentSerializer(allow_null=True, help_text="null when nothing is left for you.")
        progress = ProgressSerializer()

    @extend_schema(
        operation_id="assignment_next",
        responses={
            200: OutputSerializer,
            403: error_response(
                "`onboarding_required` (details: step and url name the missing onboarding step) or `withdrawn`."
            ),
            404: _ERROR,
            409: _ERROR,
        },
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
        assignment = assignment_next(annotator=request_user(request), campaign=campaign)
        progress = annotator_progress(annotator=request_user(request), campaign=campaign)
        payload = assignment_payload(assignment=assignment) if assignment is not None else None
        return Response({"assignment": payload, "progress": progress.as_dict()})


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            side: {
                "type": "array",
                "maxItems": 10_000,
                "items": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2},
            }
            for side in ("A", "B")
        },
    }
)
class _ListenedField(serializers.Field):
    """``{"A": [[start_s, end_s], ...], "B": [...]}``, checked by hand: DRF deep-copies a serializer's nested
    fields for every request, which cost the vote endpoint more CPU than the vote (bench/vote_submit.py).
    Other keys are ignored, as a nested serializer would."""

    default_error_messages = {"invalid": "Expected an object mapping 'A' and 'B' to lists of [start, end] seconds."}

    def to_internal_value(self, data: object) -> dict[str, list[list[float]]]:
        if not isinstance(data, dict):
            self.fail("invalid")
        parsed: dict[str, list[list[float]]] = {}
        errors: dict[str, Any] = {}
        for side in ("A", "B"):
            pairs = data.get(side, [])
            if not isinstance(pairs, list) or len(pairs) > 10_000:
                errors[side] = ["Expected a list of at most 10000 [start, end] pairs."]
                continue
            message = ["Expected [start, end]: two numbers >= 0."]
            bad = {index: message for index, pair in enumerate(pairs) if not _pair(pair)}
            if bad:
                errors[side] = bad
            else:
                parsed[side] = [[float(pair[0]), float(pair[1])] for pair in pairs]
        if errors:
            raise serializers.ValidationError(errors)
        return parsed

    def to_representation(self, value: object) -> object:
        return value


def _pair(pair: object) -> bool:
    return (
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in pair)
    )


class VoteSubmitApi(APIView):
    """Vote on an assignment. Sides are as displayed ("A" left, "B" right); intervals are seconds played."""

    permission_classes = [IsAuthenticated, CanAnnotate]

    @extend_schema_serializer(component_name="VoteSubmitInput")
    class InputSerializer(serializers.Serializer):
        alignment = serializers.ChoiceField(
            choices=["A", "B", "tie"],
            help_text='Q1: which clip follows the instruction; "tie" (no preference) where the campaign allows it.',
        )
        alignment_confidence = serializers.IntegerField(min_value=1, max_value=5)
        musicality = serializers.ChoiceField(
            choices=["A", "B", "tie"],
            help_text='Q2: which clip sounds more finished; "tie" (no preference) where the campaign allows it.',
        )
        musicality_confidence = serializers.IntegerField(min_value=1, max_value=5)
        feedback = serializers.CharField(allow_blank=True, default="", max_length=FEEDBACK_MAX_CHARS)
        listened = _ListenedField(help_text="Play intervals [[start_s, end_s], ...] per displayed side.")
        time_on_task_s = serializers.FloatField(
            min_value=0,
            max_value=CLIENT_TIME_MAX_S,
            required=False,
            allow_null=True,
            default=None,
            help_text="The client's own figure, stored for reference; the server measures time on task itself.",
        )

    @extend_schema_serializer(component_name="VoteSubmitOutput")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        alignment = serializers.ChoiceField(choices=["A", "B", "tie"], help_text="As displayed.")
        alignment_confidence = serializers.IntegerField()
        musicality = serializers.ChoiceField(choices=["A", "B", "tie"], help_text="As displayed.")
        musicality_confidence = serializers.IntegerField()
        listened_s = inline_serializer(
            "ListenedSeconds", {"A": serializers.FloatField(), "B": serializers.FloatField()}
        )
        time_on_task_s = serializers.FloatField(help_text="Measured by the server: reservation to vote.")
        created_at = serializers.DateTimeField()
        next_url = serializers.CharField()

    @extend_schema(
        operation_id="vote_submit",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: error_response(
                "Malformed input (`invalid`, naming the field), or the listening claims fail the server's evidence: "
                "audio the server never delivered (`listening_not_delivered`; details: clip, missing intervals), "
                "more listening than time since the hand-out (`listening_exceeds_elapsed_time`; details: "
                "claimed_s, elapsed_s), or the requirement not met (`listening_requirement_not_met`; details: "
                "clip, listened_s, required_s)."
            ),
            404: _ERROR,
            409: error_response("`duplicate_vote`, `assignment_closed`, or `comparison_full` (reservation lapsed)."),
        },
    )
    def post(self, request: Request, assignment_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vote = vote_submit(annotator=request_user(request), assignment_id=assignment_id, **serializer.validated_data)
        return Response(self.OutputSerializer(_vote_as_displayed(vote)).data, status=status.HTTP_201_CREATED)


def _vote_as_displayed(vote: Vote) -> dict[str, object]:
    def shown(choice: str) -> str:
        if choice == "t":
            return "tie"
        return {"a": "A", "b": "B"}[choice] if not vote.presented_swapped else {"a": "B", "b": "A"}[choice]

    first, second = (
        (vote.listened_b_s, vote.listened_a_s) if vote.presented_swapped else (vote.listened_a_s, vote.listened_b_s)
    )
    return {
        "id": vote.pk,
        "alignment": shown(vote.alignment_choice),
        "alignment_confidence": vote.alignment_confidence,
        "musicality": shown(vote.musicality_choice),
        "musicality_confidence": vote.musicality_confidence,
        "listened_s": {"A": round(first, 2), "B": round(second, 2)},
        "time_on_task_s": round(vote.time_on_task_s or 0.0, 2),
        "created_at": vote.created_at,
        "next_url": reverse("labeling:campaign-next", args=[vote.comparison.campaign_id]),
    }


class SkipSubmitApi(APIView):
    """Pass on an assignment with a reason; the reservation is released and the skip recorded."""

    permission_classes = [IsAuthenticated, CanAnnotate]

    @extend_schema_serializer(component_name="SkipSubmitInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.ChoiceField(choices=Skip.Reason.choices)
        note = serializers.CharField(allow_blank=True, default="", max_length=FEEDBACK_MAX_CHARS)

    @extend_schema_serializer(component_name="SkipSubmitOutput")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        reason = serializers.CharField()
        next_url = serializers.CharField()

    @extend_schema(
        operation_id="skip_submit",
        request=InputSerializer,
        responses={201: OutputSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def post(self, request: Request, assignment_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        skip = skip_submit(annotator=request_user(request), assignment_id=assignment_id, **serializer.validated_data)
        next_url = reverse("labeling:campaign-next", args=[skip.comparison.campaign_id])
        return Response(
            self.OutputSerializer({"id": skip.pk, "reason": skip.reason, "next_url": next_url}).data,
            status=status.HTTP_201_CREATED,
        )


# --- Adjudication (staff) -------------------------------------------------------------------

_CANONICAL = ["a", "b", "t"]


class _DisputeClipSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    audio_url = serializers.CharField(help_text="Staff audio URL of the original file.")
    duration_s = serializers.FloatField()
    system = serializers.CharField(help_text="The generating system (staff only); empty for the reference.")


class _DisputeVoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    annotator = serializers.CharField()
    alignment = serializers.ChoiceField(choices=_CANONICAL, help_text="Canonical: a = clip_a, t = no preference.")
    alignment_confidence = serializers.IntegerField()
    musicality = serializers.ChoiceField(choices=_CANONICAL)
    musicality_confidence = serializers.IntegerField()
    feedback = serializers.CharField()
    presented_swapped = serializers.BooleanField()
    time_on_task_s = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class AdjudicationSerializer(serializers.Serializer):
    alignment = serializers.ChoiceField(choices=_CANONICAL)
    musicality = serializers.ChoiceField(choices=_CANONICAL)
    note = serializers.CharField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField()


class _TallySerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    t = serializers.IntegerField(help_text="No preference.")


class ComparisonAdjudicationApi(APIView):
    """A disputed comparison and staff's resolution of it: read it, set it (PUT), or drop it (DELETE). Staff only."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="AdjudicationInput")
    class InputSerializer(serializers.Serializer):
        alignment = serializers.ChoiceField(choices=_CANONICAL, help_text="a = clip_a, b = clip_b, t = no preference.")
        musicality = serializers.ChoiceField(choices=_CANONICAL)
        note = serializers.CharField(allow_blank=True, default="", max_length=FEEDBACK_MAX_CHARS)

    @extend_schema_serializer(component_name="ComparisonDispute")
    class OutputSerializer(serializers.Serializer):
        comparison = serializers.IntegerField()
        campaign = inline_serializer(
            "DisputeCampaign", {"id": serializers.IntegerField(), "name": serializers.CharField()}
        )
        instruction = inline_serializer(
            "DisputeInstruction",
            {
                "prompt_id": serializers.CharField(),
                "prompt": serializers.CharField(),
                "lyrics": serializers.CharField(),
                "modality": serializers.CharField(),
            },
        )
        clips = inline_serializer(
            "DisputeClips",
            {
                "a": _DisputeClipSerializer(),
                "b": _DisputeClipSerializer(),
                "reference": _DisputeClipSerializer(allow_null=True),
            },
        )
        votes = _DisputeVoteSerializer(many=True)
        tally = inline_serializer("DisputeTallies", {"alignment": _TallySerializer(), "musicality": _TallySerializer()})
        adjudication = AdjudicationSerializer(allow_null=True)

    def _dispute(self, request: Request, comparison_id: int) -> Response:
        comparison = comparison_get_for_staff(user=request.user, comparison_id=comparison_id)
        return Response(self.OutputSerializer(comparison_dispute(comparison=comparison)).data)

    @extend_schema(operation_id="adjudication_get", responses={200: OutputSerializer, 404: _ERROR})
    def get(self, request: Request, comparison_id: int) -> Response:
        return self._dispute(request, comparison_id)

    @extend_schema(
        operation_id="adjudication_set", request=InputSerializer, responses={200: OutputSerializer, 404: _ERROR}
    )
    def put(self, request: Request, comparison_id: int) -> Response:
        comparison = comparison_get_for_staff(user=request.user, comparison_id=comparison_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        adjudication_set(comparison=comparison, user=request_user(request), **serializer.validated_data)
        return self._dispute(request, comparison_id)

    @extend_schema(operation_id="adjudication_delete", responses={204: None, 404: _ERROR})
    def delete(self, request: Request, comparison_id: int) -> Response:
        comparison = comparison_get_for_staff(user=request.user, comparison_id=comparison_id)
        if not adjudication_delete(comparison=comparison):
            raise NotFoundError(f"Comparison {comparison_id} has no adjudication.")
        return Response(status=status.HTTP_204_NO_CONTENT)
