"""REST API of the reward-model service (DRF; documented in the OpenAPI schema at /api/schema/).

Scoring endpoints (score, rank, jobs) take **token auth only** and are throttled per token with the
``score`` rate. Training runs, model versions and model agreement are staff-only (session or token).
Annotators get 403 everywhere: predictions and everything derived from them are never shown to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from celery.result import AsyncResult
from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from annotate.catalog.models import Clip
from annotate.catalog.selectors import campaign_get_for_staff
from annotate.errors import ApplicationError, NotFoundError, error_response, field_errors, validation_error
from annotate.parsers import BoundedJSONParser, json_loads_bounded
from annotate.people.authentication import ScopedTokenAuthentication
from annotate.permissions import IsStaff, request_user, token_scope
from rm_service import selectors, services
from rm_service.models import JobStatus, ModelVersion, ScoringJob, TrainingRun
from rm_service.presets import ENCODERS, PRESETS


class ServiceUnavailable(ApplicationError):
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "rm_unavailable"


class CanUseRewardModel(BasePermission):
    message = "The scoring API is not available to this account (staff or scoring permission required)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scope = token_scope(request)
        if scope is not None:  # a scoped token is its own grant: scoring scope only
            return scope == "scoring"
        return selectors.can_use_reward_model(request.user)


class ScoreRateThrottle(ScopedRateThrottle):
    """Per-token rate limit (``score`` rate) counted in items, not requests; a dead cache (Redis) is a 503.

    A request spends one unit per item it asks to score (at least one), so splitting a batch into many
    small requests or packing it into one big request costs the same.
    """

    cost = 1
    # Set by SimpleRateThrottle from the rate; the stubs don't declare them.
    num_requests: int
    duration: int

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.cost = _item_count(view, request)
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            # The rate limiter lives in the same Redis as the broker: say so without waiting on it again.
            reason = (
                f"The reward-model service is unavailable: the task broker cannot be reached ({type(exc).__name__})."
            )
            raise ServiceUnavailable(reason) from exc

    def throttle_success(self) -> bool:
        if len(self.history) + self.cost > self.num_requests:
            return self.throttle_failure()
        self.history[:0] = [self.now] * self.cost
        self.cache.set(self.key, self.history, self.duration)
        return True


def _item_count(view: APIView, request: Request) -> int:
    """Items a scoring request asks for (score: ``items``, rank: ``candidates``); 1 when unreadable."""
    try:
        payload = view.payload(request) if isinstance(view, ScoringApi) else {}
    except Exception:  # a malformed body is refused later, with its reason; it costs one unit here
        return 1
    if not isinstance(payload, Mapping):
        return 1
    items = payload.get("items", payload.get("candidates"))
    return max(1, len(items)) if isinstance(items, list) else 1


def _sync_timeout_s() -> float:
    return settings.RM_SCORE_SYNC_TIMEOUT_S


def _sync_max_items() -> int:
    return settings.RM_SCORE_SYNC_MAX_ITEMS


class ScoringApi(APIView):
    authentication_classes = [ScopedTokenAuthentication]
    permission_classes = [IsAuthenticated, CanUseRewardModel]
    throttle_classes = [ScoreRateThrottle]
    throttle_scope = "score"
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def payload(self, request: Request) -> Any:
        """JSON body, or for multipart uploads the JSON in the ``payload`` form field."""
        if request.content_type.startswith("multipart/"):
            try:
                # Multipart bodies are parsed into a QueryDict (a Mapping), never a list.
                return json_loads_bounded(cast(Mapping[str, Any], request.data).get("payload", ""))
            except ParseError as exc:
                message = f"multipart requests carry the JSON body in the 'payload' field: {exc.detail}"
                raise ValidationError({"payload": message}) from exc
        return request.data

    def check_available(self) -> ModelVersion:
        reason = selectors.rm_unavailable_reason()
        if reason:
            raise ServiceUnavailable(reason)
        version = selectors.model_version_active()
        if version is None:
            raise ServiceUnavailable("No reward model is active yet: train one and activate it first.")
        return version

    def audio(self, request: Request, data: dict[str, Any], prefix: str, label: str, required: bool) -> dict[str, str]:
        names = [f"{prefix}clip_id", f"{prefix}url", f"{prefix}upload"]
        given = [n for n in names if data.get(n) not in (None, "")]
        if len(given) != 1:
            if not required and not given:
                return {}
            raise services.RmServiceError(f"{label}: give exactly one of {', '.join(names)}")
        upload = None
        if given[0].endswith("upload"):
            upload = request.FILES.get(data[given[0]])
            if upload is None:
                raise services.RmServiceError(f"{label}: no uploaded file named {data[given[0]]!r}")
        spec = services.ItemSpec(
            clip_id=data.get(f"{prefix}clip_id"), url=data.get(f"{prefix}url") or "", upload=upload
        )
        return services.scoring_audio_resolve(spec=spec, label=label)

    def submit(
        self, request: Request, *, kind: str, items: list[dict[str, Any]], params: dict[str, Any], version: ModelVersion
    ) -> Response:
        small = len(items) <= _sync_max_items() and params.get("wait", True)
        served = self.serve(request, kind=kind, items=items, params=params, version=version) if small else None
        if served is not None:
            return served
        try:
            job = services.scoring_job_create(
                user=request_user(request),
                kind=kind,
                items=items,
                params=params,
                version=version,
                interactive=bool(params.get("wait", True)),
            )
        except services.RmUnavailable as exc:  # the broker went away after the availability check
            raise ServiceUnavailable(str(exc)) from exc
        if len(items) > _sync_max_items() or not params.get("wait", True):
            return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)
        try:
            AsyncResult(str(job.public_id)).get(timeout=_sync_timeout_s(), propagate=False, interval=0.01)
        except Exception:  # TimeoutError: answer 202 and let the client poll the job
            pass
        job.refresh_from_db()
        if job.status == JobStatus.SUCCEEDED:
            return Response(_job_body(job), status=status.HTTP_200_OK)
        # A failed job is a finished job: its body says "failed" and why (with no server paths), as polling does.
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)

    def serve(
        self, request: Request, *, kind: str, items: list[dict[str, Any]], params: dict[str, Any], version: ModelVersion
    ) -> Response | None:
        """The batching scoring server's answer, or None when it is not available (then: the Celery path)."""
        try:
            job = services.scoring_serve(
                user=request_user(request), kind=kind, items=items, params=params, version=version
            )
        except services.RmUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        if job is None:
            return None
        # A failed request is a finished job: 202 with status "failed" and why, as on the Celery path.
        code = status.HTTP_200_OK if job.status == JobStatus.SUCCEEDED else status.HTTP_202_ACCEPTED
        return Response(_job_body(job), status=code)


def _job_body(job: ScoringJob) -> dict[str, Any]:
    result = job.result or {}
    body: dict[str, Any] = {
        "job": str(job.public_id),
        "kind": job.kind,
        "status": job.status,
        "model_version": {"id": job.model_version_id, "name": job.model_version.name},
        "progress": job.progress,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "status_url": f"/api/v1/jobs/{job.public_id}",
    }
    if job.error:
        body["error"] = job.error
    if job.status == JobStatus.SUCCEEDED:
        body.update({k: v for k, v in result.items() if k != "model_version"})
    return body


# --- Response shapes (typed for the schema; the bodies are built by _job_body and selectors.model_agreement) ---


class ScoredItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    alignment = serializers.FloatField()
    musicality = serializers.FloatField()


class RankedCandidateSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the candidate in the request.")
    alignment = serializers.FloatField()
    musicality = serializers.FloatField()
    score = serializers.FloatField(help_text="Weighted score the ranking uses.")
    rank = serializers.IntegerField(help_text="1 = best.")
    top_k = serializers.BooleanField(help_text="Among the top_k selected.")


class JobModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ScoringJobOutputSerializer(serializers.Serializer):
    """A scoring, ranking or prediction job; the result fields appear once it has succeeded."""

    job = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ScoringJob.Kind.choices)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    model_version = JobModelVersionSerializer()
    progress = serializers.DictField(child=serializers.IntegerField(), help_text='e.g. {"done": 3}')
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.CharField()
    error = serializers.CharField(required=False, help_text="Why the job failed (no server paths).")
    items = ScoredItemSerializer(many=True, required=False, help_text="score: per item, in request order.")
    weights = serializers.ListField(child=serializers.FloatField(), required=False, help_text="rank.")
    top_k = serializers.IntegerField(required=False, help_text="rank.")
    candidates = RankedCandidateSerializer(many=True, required=False, help_text="rank: best first.")
    campaign = serializers.IntegerField(required=False, help_text="predict.")
    predictions = serializers.IntegerField(required=False, help_text="predict: predictions written.")


_SCORING_RESPONSES = {
    200: ScoringJobOutputSerializer,
    202: OpenApiResponse(ScoringJobOutputSerializer, description="Queued, still running, or failed: poll status_url."),
    400: error_response(),
    503: error_response("`rm_unavailable`"),
    504: error_response("`rm_timeout`"),
}


class ClipRefSerializer(serializers.Serializer):
    """Audio to score: exactly one of clip_id, url (a platform clip URL) or upload (a multipart field name)."""

    clip_id = serializers.IntegerField(required=False)
    url = serializers.CharField(required=False, allow_blank=True)
    upload = serializers.CharField(required=False, allow_blank=True, help_text="Multipart file field name.")


class InstructionRefSerializer(serializers.Serializer):
    """An instruction: text, lyrics and at most one reference audio (clip id, url or upload)."""

    text = serializers.CharField(required=False, allow_blank=True, default="")
    lyrics = serializers.CharField(required=False, allow_blank=True, default="")
    reference_clip_id = serializers.IntegerField(required=False)
    reference_url = serializers.CharField(required=False, allow_blank=True)
    reference_upload = serializers.CharField(required=False, allow_blank=True)


class ScoreItemSerializer(ClipRefSerializer, InstructionRefSerializer):
    """One clip and its instruction."""


class ScoringJobScoreApi(ScoringApi):
    ItemSerializer = ScoreItemSerializer

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ScoreRequest"

        items = serializers.ListField(child=ScoreItemSerializer(), min_length=1, max_length=1000)
        batch_size = serializers.IntegerField(required=False, min_value=1, max_value=256, default=16)
        max_dur = serializers.FloatField(required=False, allow_null=True, min_value=1.0, default=None)
        wait = serializers.BooleanField(
            required=False, default=True, help_text="false: always answer 202 with a job id (poll /api/v1/jobs/<id>)."
        )

    @extend_schema(
        request=InputSerializer,
        responses=_SCORING_RESPONSES,
        summary="Score clips against instructions: {alignment, musicality} per item.",
    )
    def post(self, request: Request) -> Response:
        version = self.check_available()
        data = self.InputSerializer(data=self.payload(request))
        data.is_valid(raise_exception=True)
        items = []
        for i, raw in enumerate(data.validated_data["items"]):
            item = self.ItemSerializer(data=raw)
            if not item.is_valid():
                raise validation_error(field_errors(item.errors, f"items.{i}"))
            items.append(self.resolve_item(request, item.validated_data, i))
        params = {k: data.validated_data[k] for k in ("batch_size", "max_dur", "wait")}
        return self.submit(request, kind=ScoringJob.Kind.SCORE, items=items, params=params, version=version)

    def resolve_item(self, request: Request, item: dict[str, Any], i: int) -> dict[str, Any]:
        audio = self.audio(request, item, "", f"item {i} audio", required=True)
        ref = self.audio(request, item, "reference_", f"item {i} reference audio", required=False)
        return {
            "audio": audio["audio"],
            "audio_sha256": audio["sha256"],
            "text": item.get("text", ""),
            "lyrics": item.get("lyrics", ""),
            "ref_audio": ref.get("audio"),
        }


class ScoringJobRankApi(ScoringApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RankRequest"

        instruction = InstructionRefSerializer()
        candidates = serializers.ListField(child=ClipRefSerializer(), min_length=1, max_length=1000)
        weights = serializers.ListField(
            child=serializers.FloatField(min_value=0),
            min_length=2,
            max_length=2,
            default=[0.5, 0.5],
            help_text="[alignment, musicality] weights.",
        )
        top_k = serializers.IntegerField(min_value=1, default=1)
        batch_size = serializers.IntegerField(required=False, min_value=1, max_value=256, default=16)
        max_dur = serializers.FloatField(required=False, allow_null=True, min_value=1.0, default=None)
        wait = serializers.BooleanField(
            required=False, default=True, help_text="false: always answer 202 with a job id (poll /api/v1/jobs/<id>)."
        )

        def validate_weights(self, value: list[float]) -> list[float]:
            if sum(value) <= 0:
                raise serializers.ValidationError("weights must not both be zero")
            return value

    @extend_schema(
        request=InputSerializer,
        responses=_SCORING_RESPONSES,
        summary="Best-of-N: rank candidates for one instruction by the weighted score; top-k marked.",
    )
    def post(self, request: Request) -> Response:
        version = self.check_available()
        data = self.InputSerializer(data=self.payload(request))
        data.is_valid(raise_exception=True)
        v = data.validated_data
        instruction = v["instruction"]
        ref = self.audio(request, instruction, "reference_", "instruction reference audio", required=False)
        items = []
        for i, candidate in enumerate(v["candidates"]):
            audio = self.audio(request, candidate, "", f"candidate {i} audio", required=True)
            items.append(
                {
                    "audio": audio["audio"],
                    "audio_sha256": audio["sha256"],
                    "text": str(instruction.get("text", "")),
                    "lyrics": str(instruction.get("lyrics", "")),
                    "ref_audio": ref.get("audio"),
                }
            )
        params = {k: v[k] for k in ("weights", "top_k", "batch_size", "max_dur", "wait")}
        return self.submit(request, kind=ScoringJob.Kind.RANK, items=items, params=params, version=version)


class ScoringJobDetailApi(APIView):
    authentication_classes = [ScopedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, CanUseRewardModel]

    @extend_schema(
        responses={200: ScoringJobOutputSerializer}, summary="Status, progress and result of a scoring or ranking job."
    )
    def get(self, request: Request, public_id: str) -> Response:
        job = selectors.scoring_job_get(user=request.user, public_id=public_id)
        return Response(_job_body(job))


# --- Training runs and the registry (staff) -------------------------------------------------------------


class TrainingRunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "status",
            "campaign",
            "source",
            "export_id",
            "train_jsonl",
            "validation_jsonl",
            "test_jsonl",
            "pseudo_jsonl",
            "dataset_root",
            "data_sha256",
            "encoder",
            "preset",
            "config",
            "step",
            "total_steps",
            "loss",
            "val_metrics",
            "history",
            "attempts",
            "cancel_requested",
            "resumable",
            "error",
            "model_version",
            "worker",
            "heartbeat_at",
            "created_at",
            "started_at",
            "finished_at",
        ]


def _unavailable_guard() -> None:
    reason = selectors.rm_unavailable_reason()
    if reason:
        raise ServiceUnavailable(reason)


class TrainingRunCreateApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TrainingRunRequest"

        export_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        campaign_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        train_jsonl = serializers.CharField(required=False, allow_blank=True, default="")
        validation_jsonl = serializers.CharField(required=False, allow_blank=True, default="")
        test_jsonl = serializers.CharField(required=False, allow_blank=True, default="")
        dataset_root = serializers.CharField(required=False, allow_blank=True, default="")
        pseudo_jsonl = serializers.CharField(required=False, allow_blank=True, default="")
        encoder = serializers.ChoiceField(choices=ENCODERS, required=False, default="builtin")
        preset = serializers.ChoiceField(choices=list(PRESETS), required=False, default="tiny")
        config = serializers.DictField(required=False, default=dict)
        resume_from = serializers.CharField(required=False, allow_blank=True, default="")
        name = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={201: TrainingRunOutputSerializer, 400: error_response(), 503: error_response("`rm_unavailable`")},
        summary="Start a training run from a campaign export or a JSONL file (staff).",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _unavailable_guard()
        args = dict(data.validated_data)
        campaign_id = args.pop("campaign_id")
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id) if campaign_id else None
        run = services.training_run_create(user=request_user(request), campaign=campaign, **args)
        return Response(TrainingRunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: TrainingRunOutputSerializer}, summary="A training run with live progress.")
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.training_run_get(user=request.user, run_id=run_id)
        return Response(TrainingRunOutputSerializer(run).data)


class TrainingRunCancelApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: TrainingRunOutputSerializer}, summary="Cancel a training run.")
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.training_run_get(user=request.user, run_id=run_id)
        run = services.training_run_cancel(run=run)
        return Response(TrainingRunOutputSerializer(run).data)


class TrainingRunResumeApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        request=None,
        responses={200: TrainingRunOutputSerializer},
        summary="Resume a failed or cancelled run from its last checkpoint.",
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.training_run_get(user=request.user, run_id=run_id)
        _unavailable_guard()
        run = services.training_run_resume(run=run)
        return Response(TrainingRunOutputSerializer(run).data)


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "campaign",
            "checkpoint_path",
            "config",
            "encoder",
            "encoder_id",
            "training_data",
            "metrics",
            "is_active",
            "activated_at",
            "created_at",
        ]


class ModelVersionListApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: ModelVersionOutputSerializer(many=True)}, summary="The model registry.")
    def get(self, request: Request) -> Response:
        return Response(ModelVersionOutputSerializer(ModelVersion.objects.all()[:200], many=True).data)


class ModelVersionActivateApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        request=None,
        responses={200: ModelVersionOutputSerializer},
        summary="Make a version the active model; queues its predictions for active campaigns.",
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = selectors.model_version_get(user=request.user, version_id=version_id)
        _unavailable_guard()
        version = services.model_version_activate(version=version)
        return Response(ModelVersionOutputSerializer(version).data)


class ModelAccuracySerializer(serializers.Serializer):
    accuracy = serializers.FloatField(allow_null=True, help_text="A tie vote counts half, as in the benchmark.")
    n = serializers.IntegerField()


class ModelCalibrationBinSerializer(serializers.Serializer):
    lo = serializers.FloatField()
    hi = serializers.FloatField()
    n = serializers.IntegerField()
    mean_prob = serializers.FloatField()
    observed = serializers.FloatField()


class ModelCalibrationSerializer(serializers.Serializer):
    bins = ModelCalibrationBinSerializer(many=True)
    ece = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class ModelAccuracyPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    n = serializers.IntegerField()
    accuracy = serializers.FloatField()


class ModelQuestionAgreementSerializer(serializers.Serializer):
    single_votes = ModelAccuracySerializer()
    majority = ModelAccuracySerializer()
    by_confidence = serializers.DictField(child=ModelAccuracySerializer(), help_text="Keyed by confidence 1-5.")
    by_modality = serializers.DictField(child=ModelAccuracySerializer(), help_text="Keyed by T, L, A, C.")
    by_vocal = serializers.DictField(child=ModelAccuracySerializer(), help_text="vocal, instrumental, unknown.")
    calibration = ModelCalibrationSerializer()
    over_time = ModelAccuracyPointSerializer(many=True)


class ModelAgreementQuestionsSerializer(serializers.Serializer):
    alignment = ModelQuestionAgreementSerializer()
    musicality = ModelQuestionAgreementSerializer()


class ModelDisagreementSerializer(serializers.Serializer):
    comparison = serializers.IntegerField()
    question = serializers.ChoiceField(choices=["alignment", "musicality"])
    model_choice = serializers.ChoiceField(choices=["a", "b"])
    probability = serializers.FloatField()
    human_majority = serializers.ChoiceField(choices=["a", "b"])
    votes_a = serializers.IntegerField()
    votes_b = serializers.IntegerField()
    url = serializers.CharField(help_text="Staff page to hear the clips, read the votes and resolve the comparison.")


class ModelAgreementExcludedSerializer(serializers.Serializer):
    withdrawn = serializers.IntegerField(help_text="Votes of annotators who withdrew (never counted).")
    flagged = serializers.IntegerField(help_text="Votes of annotators flagged by quality control.")
    flagged_annotators = serializers.IntegerField()
    training = serializers.IntegerField(help_text="Votes in the model's training or validation data.")
    training_rule = serializers.CharField(help_text="How training votes were identified.")
    attention_checks = serializers.IntegerField(help_text="Votes on attention checks (never counted).")


class ModelAgreementSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    model_version = serializers.IntegerField()
    model_name = serializers.CharField()
    predictions = serializers.IntegerField()
    votes = serializers.IntegerField(help_text="Votes compared, after the exclusions.")
    filters = inline_serializer(
        "ModelAgreementFilters",
        {"held_out_only": serializers.BooleanField(), "exclude_flagged": serializers.BooleanField()},
    )
    excluded = ModelAgreementExcludedSerializer()
    adjudicated = serializers.IntegerField(help_text="Comparisons judged against staff's adjudicated label.")
    questions = ModelAgreementQuestionsSerializer()
    disagreements = ModelDisagreementSerializer(many=True)


class CampaignModelAgreementApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ModelAgreementQuery"

        model_version = serializers.IntegerField(required=False)
        confident = serializers.FloatField(required=False, min_value=0.5, max_value=1.0, default=0.7)
        held_out_only = serializers.BooleanField(
            required=False, default=True, help_text="Only votes not in the model's training or validation data."
        )
        exclude_flagged = serializers.BooleanField(
            required=False, default=True, help_text="Leave out annotators flagged by quality control."
        )

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: ModelAgreementSerializer, 404: error_response("No such campaign, or no model version.")},
        summary="Model vs human agreement for a campaign (the dashboard's numbers).",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        version_id = params.validated_data.pop("model_version", None)
        version = (
            selectors.model_version_get(user=request.user, version_id=version_id)
            if version_id
            else selectors.model_version_active()
        )
        if version is None:
            raise NotFoundError("No model version is active; pass ?model_version=<id>.")
        return Response(selectors.model_agreement(campaign=campaign, version=version, **params.validated_data))


class _AnyAcceptNegotiation(BaseContentNegotiation):
    """Audio answers whatever the client accepts; an error is the JSON Error shape regardless of Accept."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class ClipAudioApi(APIView):
    """A clip's original audio for scoring pipelines: the platform ``url`` the score API accepts."""

    authentication_classes = [ScopedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, CanUseRewardModel]
    content_negotiation_class = _AnyAcceptNegotiation

    @extend_schema(
        responses={
            (200, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The clip's file as imported."),
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
        },
        summary="A clip's audio (staff and scoring accounts).",
    )
    def get(self, request: Request, clip_id: int) -> FileResponse:
        clip = Clip.objects.filter(pk=clip_id).first()
        if clip is None:
            raise NotFoundError(f"clip {clip_id} does not exist")
        return FileResponse(Path(services.clip_path(clip)).open("rb"))
