"""REST API for exports: staff (session or token) only; annotators get 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.catalog.selectors import campaign_get_for_staff
from annotate.errors import ApplicationError, NotFoundError, error_response
from annotate.exports.models import Export
from annotate.exports.params import ARCHIVE_FORMATS, AUDIO_MODES
from annotate.exports.selectors import export_dir_for, export_get_for_user, export_list_for_campaign
from annotate.exports.services import export_create
from annotate.permissions import IsStaff, request_user


class ExportParametersSerializer(serializers.Serializer):
    """Types of the export parameters; their meaning and cross-checks live in ``ExportParameters``.

    Every field is optional (the service's defaults apply). Also used by the staff page's form,
    where an unticked checkbox reads as false.
    """

    seed = serializers.IntegerField(required=False)
    test_size = serializers.IntegerField(required=False, allow_null=True, help_text="Test split size (comparisons).")
    test_fraction = serializers.FloatField(required=False, help_text="Used when test_size is not given.")
    validation_fraction = serializers.FloatField(required=False)
    balance_test = serializers.BooleanField(required=False)
    group_by_reference = serializers.BooleanField(required=False)
    min_votes_per_comparison = serializers.IntegerField(required=False)
    min_confidence = serializers.IntegerField(required=False)
    exclude_gold = serializers.BooleanField(required=False)
    exclude_attention_checks = serializers.BooleanField(required=False)
    exclude_flagged_annotators = serializers.BooleanField(required=False)
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)
    audio = serializers.ChoiceField(choices=AUDIO_MODES, required=False)
    archive = serializers.ChoiceField(choices=ARCHIVE_FORMATS, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields) - {"csrfmiddlewaretoken"})
        if unknown:
            raise ValidationError({name: "unknown parameter" for name in unknown})
        return attrs


class ExportSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="campaign_id")
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    detail_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = (
            "id",
            "campaign",
            "status",
            "progress",
            "progress_message",
            "parameters",
            "summary",
            "error",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "detail_url",
            "download_url",
            "files",
        )

    def get_detail_url(self, export: Export) -> str:
        return reverse("exports:api-detail", args=[export.pk])

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.SUCCEEDED or not export.archive_path:
            return None
        return reverse("exports:api-download", args=[export.pk])

    def get_files(self, export: Export) -> list[str]:
        """Names that ``/files/<name>`` serves: the JSONL files, README.md and manifest.json."""
        if export.status != Export.Status.SUCCEEDED:
            return []
        return list(_DOWNLOADABLE)


_DOWNLOADABLE = (
    "votes.jsonl",
    "train.jsonl",
    "validation.jsonl",
    "test.jsonl",
    "comparisons.jsonl",
    "manifest.json",
    "README.md",
)


_ERROR = error_response()
_FILE = OpenApiResponse(OpenApiTypes.BINARY, description="The file, as an attachment.")


class ExportCreateApi(APIView):
    """Queue an export of a campaign; poll ``detail_url`` for progress."""

    permission_classes = [IsStaff]
    InputSerializer = ExportParametersSerializer
    OutputSerializer = ExportSerializer

    @extend_schema(
        operation_id="export_create",
        request=ExportParametersSerializer,
        responses={202: ExportSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = export_create(
            campaign=campaign, requested_by=request_user(request), parameters=serializer.validated_data
        )
        return Response(self.OutputSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportListApi(APIView):
    """The newest 100 exports, of one campaign with ``?campaign=<id>``, else of every campaign."""

    permission_classes = [IsStaff]
    OutputSerializer = ExportSerializer

    class FilterSerializer(serializers.Serializer):
        campaign = serializers.IntegerField(required=False, help_text="Only this campaign's exports.")

    @extend_schema(
        operation_id="export_list",
        responses={200: ExportSerializer(many=True), 400: _ERROR},
        parameters=[FilterSerializer],
    )
    def get(self, request: Request) -> Response:
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        campaign_id = query.validated_data.get("campaign")
        campaign = None if campaign_id is None else campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        exports = export_list_for_campaign(user=request.user, campaign=campaign)[:100]
        return Response(self.OutputSerializer(exports, many=True).data)


class ExportDetailApi(APIView):
    """Status, progress, counts, shortfall and error of one export."""

    permission_classes = [IsStaff]
    OutputSerializer = ExportSerializer

    @extend_schema(operation_id="export_detail", responses={200: ExportSerializer, 403: _ERROR, 404: _ERROR})
    def get(self, request: Request, export_id: int) -> Response:
        export = export_get_for_user(user=request.user, export_id=export_id)
        return Response(self.OutputSerializer(export).data)


def _require_finished(export: Export) -> None:
    if export.status != Export.Status.SUCCEEDED:
        raise ApplicationError(
            f"Export {export.pk} is {export.status}; files are available once it has succeeded.",
            code="export_not_finished",
            status=status.HTTP_409_CONFLICT,
        )


class ExportDownloadApi(APIView):
    """The whole export as one archive (tar.gz or zip, as requested)."""

    permission_classes = [IsStaff]

    @extend_schema(operation_id="export_download", responses={200: _FILE, 404: _ERROR, 409: _ERROR})
    def get(self, request: Request, export_id: int) -> FileResponse:
        export = export_get_for_user(user=request.user, export_id=export_id)
        _require_finished(export)
        if not export.archive_path:
            raise NotFoundError("This export was made without an archive; download its files one by one.")
        path = Path(settings.EXPORT_ROOT) / export.archive_path
        if not path.is_file():
            raise NotFoundError("The archive is no longer on disk.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


class ExportFileApi(APIView):
    """One file of a finished export (JSONL, README.md or manifest.json)."""

    permission_classes = [IsStaff]

    @extend_schema(operation_id="export_file", responses={200: _FILE, 404: _ERROR, 409: _ERROR})
    def get(self, request: Request, export_id: int, name: str) -> FileResponse:
        export = export_get_for_user(user=request.user, export_id=export_id)
        _require_finished(export)
        # A fixed list, so no path in the URL can reach outside the export.
        if name not in _DOWNLOADABLE or not (export_dir_for(export) / name).is_file():
            raise NotFoundError(f"No file {name!r} in this export.")
        return FileResponse(
            (export_dir_for(export) / name).open("rb"), as_attachment=True, filename=f"export-{export.pk}-{name}"
        )
