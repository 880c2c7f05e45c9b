"""REST API of the agreement app: one class per operation."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.agreement.bradley_terry import BOOTSTRAP_SAMPLES
from annotate.agreement.leaderboard import MIN_VOTES, LeaderboardQuery, system_leaderboard
from annotate.agreement.selectors import AgreementFilters, campaign_agreement
from annotate.catalog.selectors import campaign_get_for_staff
from annotate.errors import ApplicationError, error_response
from annotate.permissions import IsStaff


@extend_schema_field({"type": "string", "pattern": "^[TLACtlac, ]*$"})
class ModalityField(serializers.CharField):
    """Modality letters; the schema states which, so a generated request is never one we refuse."""


@extend_schema_serializer(component_name="AgreementFilters")
class FiltersSerializer(serializers.Serializer):
    """Query-string filters shared by the API and the dashboard."""

    modality = ModalityField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Instruction modalities to keep, e.g. 'T' or 'TL' or 'T,L' (T/L/A/C).",
    )
    vocal = serializers.ChoiceField(
        choices=["", "vocal", "instrumental"],
        required=False,
        default="",
        help_text="'vocal' (either clip has vocals) or 'instrumental' (neither has).",
    )
    since = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Votes cast on or after this date (UTC)."
    )
    until = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Votes cast on or before this date (UTC)."
    )

    def validate_modality(self, value: str) -> tuple[str, ...]:
        letters = tuple(dict.fromkeys(c for c in value.upper() if c not in ", "))
        unknown = [c for c in letters if c not in "TLAC"]
        if unknown:
            raise serializers.ValidationError(f"Unknown modality {''.join(unknown)!r}; use T, L, A or C.")
        return letters

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            # A relation between two fields, which the schema can't state: its own code says so.
            raise ApplicationError("'until' is before 'since'.", code="invalid_range", field="until")
        return attrs

    def to_filters(self) -> AgreementFilters:
        data = self.validated_data
        vocal = {"vocal": True, "instrumental": False}.get(data["vocal"])
        return AgreementFilters(
            modalities=data["modality"],
            vocal=vocal,
            since=_day_start(data["since"]),
            until=_day_start(data["until"] + dt.timedelta(days=1)) if data["until"] else None,
        )


def _day_start(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# --- Response documentation ----------------------------------------------------------


class AgreementAlpha(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "not_enough_overlap", "no_variation"])
    value = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha, nominal; null unless status ok.")
    ci95_low = serializers.FloatField(allow_null=True, help_text="Percentile bootstrap over comparisons.")
    ci95_high = serializers.FloatField(allow_null=True)
    paired_comparisons = serializers.IntegerField()
    min_paired_comparisons = serializers.IntegerField()
    bootstrap_samples = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)
    observed_agreement = serializers.FloatField(
        allow_null=True, required=False, help_text="Agreement of the paired votes (Krippendorff's coincidences)."
    )
    expected_agreement = serializers.FloatField(
        allow_null=True, required=False, help_text="Agreement expected by chance from how often each answer occurs."
    )
    majority_share = serializers.FloatField(
        allow_null=True, required=False, help_text="Share of paired votes on the most common answer."
    )
    prevalence_note = serializers.CharField(
        allow_blank=True,
        required=False,
        help_text="Why alpha is low despite high agreement, when prevalence explains it.",
    )


class AgreementQuestionSummary(serializers.Serializer):
    agreement_rate = serializers.FloatField(allow_null=True, help_text="Agreeing / all vote pairs per comparison.")
    comparisons_with_2plus_votes = serializers.IntegerField()
    votes_on_those_comparisons = serializers.IntegerField()
    vote_pairs = serializers.IntegerField()
    agreeing_pairs = serializers.IntegerField()
    disagreeing_pairs = serializers.IntegerField()
    alpha = AgreementAlpha()


class AgreementSummary(serializers.Serializer):
    vote_count = serializers.IntegerField()
    comparison_count = serializers.IntegerField()
    annotator_count = serializers.IntegerField()
    alignment = AgreementQuestionSummary()
    musicality = AgreementQuestionSummary()


class AgreementMeanConfidences(serializers.Serializer):
    alignment_mean_confidence = serializers.FloatField(allow_null=True)
    musicality_mean_confidence = serializers.FloatField(allow_null=True)


class AgreementCrossQuestion(serializers.Serializer):
    votes = serializers.IntegerField()
    same_choice = serializers.IntegerField()
    consistency_rate = serializers.FloatField(allow_null=True)
    when_same = AgreementMeanConfidences()
    when_different = AgreementMeanConfidences()


class AgreementConfidenceLevel(serializers.Serializer):
    confidence = serializers.IntegerField()
    paired_votes = serializers.IntegerField()
    pairs = serializers.IntegerField()
    agreeing_pairs = serializers.IntegerField()
    agreement_rate = serializers.FloatField(allow_null=True)


class AgreementConfidenceBin(serializers.Serializer):
    bin = serializers.ChoiceField(choices=["low", "medium", "high"])
    description = serializers.CharField()
    comparisons = serializers.IntegerField()
    split = serializers.IntegerField(help_text="Comparisons whose votes are not unanimous.")
    split_rate = serializers.FloatField(allow_null=True)
    agreement_rate = serializers.FloatField(allow_null=True)


class AgreementSplitTest(serializers.Serializer):
    odds_ratio = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Fisher's exact test, low split more than high.")


class AgreementSplitByConfidence(serializers.Serializer):
    bins = AgreementConfidenceBin(many=True)
    low_vs_high_split_test = AgreementSplitTest()


class AgreementQuestionConfidence(serializers.Serializer):
    distribution = serializers.DictField(child=serializers.IntegerField(), help_text="Votes per confidence 1-5.")
    agreement_by_confidence = AgreementConfidenceLevel(many=True)
    split_by_mean_confidence = AgreementSplitByConfidence()


class AgreementConfidence(serializers.Serializer):
    alignment = AgreementQuestionConfidence()
    musicality = AgreementQuestionConfidence()


class AgreementAnnotator(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    votes = serializers.IntegerField()
    median_time_on_task_s = serializers.FloatField(allow_null=True)
    median_listened_fraction = serializers.FloatField(allow_null=True)
    loo_shared_votes = serializers.IntegerField()
    loo_agreement = serializers.FloatField(allow_null=True, help_text="Agreement with the others' strict majority.")
    loo_agreement_alignment = serializers.FloatField(allow_null=True)
    loo_agreement_musicality = serializers.FloatField(allow_null=True)
    gold_answers = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    left_choices = serializers.IntegerField()
    choices = serializers.IntegerField()
    left_fraction = serializers.FloatField(allow_null=True, help_text="Choices of the clip shown on the left.")
    position_bias_p = serializers.FloatField(allow_null=True, help_text="Two-sided binomial test against 0.5.")
    position_bias_p_holm = serializers.FloatField(allow_null=True)
    modal_confidence_fraction = serializers.FloatField(allow_null=True)
    fast_vote_fraction = serializers.FloatField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())


class AgreementDisputed(serializers.Serializer):
    comparison_id = serializers.IntegerField()
    prompt_id = serializers.CharField(allow_blank=True)
    modality = serializers.CharField()
    votes = serializers.IntegerField()
    alignment_a = serializers.IntegerField()
    alignment_b = serializers.IntegerField()
    musicality_a = serializers.IntegerField()
    musicality_b = serializers.IntegerField()
    dispute = serializers.FloatField(help_text="Mean minority share over both questions (0.5 = even split).")
    url = serializers.CharField(required=False, help_text="Staff page to hear the clips, read the votes and resolve.")


class AgreementFreshness(serializers.Serializer):
    # A field named "source" is fine for DRF; the stubs see it shadow Field.source (a str).
    source = serializers.ChoiceField(choices=["live", "snapshot"])  # type: ignore[assignment]
    computed_at = serializers.DateTimeField(allow_null=True)
    compute_seconds = serializers.FloatField(allow_null=True)
    votes_since = serializers.IntegerField(help_text="Votes newer than a snapshot (0 when live).")
    refresh_pending = serializers.BooleanField()


class AgreementCampaign(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AgreementReportApi(APIView):
    """Agreement and quality statistics of one campaign."""

    permission_classes = [IsStaff]

    InputSerializer = FiltersSerializer

    @extend_schema_serializer(component_name="AgreementReport")
    class OutputSerializer(serializers.Serializer):
        campaign = AgreementCampaign()
        filters = inline_serializer(
            "AgreementAppliedFilters",
            {
                "modalities": serializers.ListField(child=serializers.ChoiceField(choices=["T", "L", "A", "C"])),
                "vocal": serializers.BooleanField(allow_null=True),
                "since": serializers.DateTimeField(allow_null=True),
                "until": serializers.DateTimeField(allow_null=True, help_text="Exclusive."),
            },
        )
        summary = AgreementSummary()
        cross_question = AgreementCrossQuestion()
        confidence = AgreementConfidence()
        annotators = AgreementAnnotator(many=True)
        disputed = AgreementDisputed(many=True)
        thresholds = inline_serializer(
            "QualityThresholds",
            {
                "min_votes": serializers.IntegerField(),
                "same_side_fraction": serializers.FloatField(),
                "same_confidence_fraction": serializers.FloatField(),
                "fast_vote_seconds": serializers.FloatField(),
                "fast_vote_fraction": serializers.FloatField(),
                "position_bias_p": serializers.FloatField(),
                "min_gold_answers": serializers.IntegerField(),
                "min_gold_accuracy": serializers.FloatField(),
            },
            help_text="Quality-control thresholds behind the flags.",
        )
        freshness = AgreementFreshness()

    @extend_schema(
        operation_id="campaign_agreement",
        summary="Agreement rate, Krippendorff's alpha, confidence and per-annotator quality of a campaign",
        parameters=[FiltersSerializer],
        responses={200: OutputSerializer, 400: error_response(), 403: error_response(), 404: error_response()},
        tags=["agreement"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        filters = self.InputSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        report = campaign_agreement(campaign=campaign, filters=filters.to_filters())
        return Response(self.OutputSerializer(report).data)


# --- Leaderboard -----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="LeaderboardParameters")
class LeaderboardParamsSerializer(FiltersSerializer):
    """The agreement filters plus the leaderboard's own settings."""

    min_votes = serializers.IntegerField(
        required=False,
        default=MIN_VOTES,
        min_value=1,
        max_value=1_000_000,
        help_text="Votes a system needs before it is ranked.",
    )
    bootstrap_samples = serializers.IntegerField(
        required=False,
        default=BOOTSTRAP_SAMPLES,
        min_value=20,
        max_value=1000,
        help_text="Bootstrap resamples of the comparisons behind the intervals.",
    )

    def to_query(self, campaign_ids: tuple[int, ...] | None) -> LeaderboardQuery:
        return LeaderboardQuery(
            campaign_ids=campaign_ids,
            filters=self.to_filters(),
            min_votes=self.validated_data["min_votes"],
            bootstrap_samples=self.validated_data["bootstrap_samples"],
        )


class LeaderboardPosition(serializers.Serializer):
    strength = serializers.FloatField(help_text="Bradley–Terry strength on the logit scale, centred on 0.")
    lower = serializers.FloatField(help_text="Lower end of the bootstrap interval.")
    upper = serializers.FloatField()
    rank = serializers.IntegerField()
    rank_best = serializers.IntegerField(help_text="1 + systems whose interval lies wholly above this one's.")
    rank_worst = serializers.IntegerField(help_text="Systems ranked minus those whose interval lies wholly below.")


class LeaderboardSystem(serializers.Serializer):
    system = serializers.CharField()
    votes = serializers.IntegerField()
    wins = serializers.FloatField(help_text="Wins, a tie counting half.")
    ties = serializers.IntegerField()
    ranked = serializers.BooleanField(help_text="False below min_votes.")
    human = LeaderboardPosition(allow_null=True)
    model = LeaderboardPosition(allow_null=True, help_text="The active reward model's board, same comparisons.")


class LeaderboardRankShift(serializers.Serializer):
    system = serializers.CharField()
    human_rank = serializers.IntegerField()
    model_rank = serializers.IntegerField()
    rank_shift = serializers.IntegerField(help_text="Model rank minus human rank.")


class LeaderboardModelAgreement(serializers.Serializer):
    comparisons_scored = serializers.IntegerField(help_text="Votes on comparisons the active model has scored.")
    kendall_tau = serializers.FloatField(allow_null=True)
    kendall_tau_lower = serializers.FloatField(allow_null=True)
    kendall_tau_upper = serializers.FloatField(allow_null=True)
    disagreements = LeaderboardRankShift(many=True)


class LeaderboardQuestion(serializers.Serializer):
    votes = serializers.IntegerField()
    ranked_votes = serializers.IntegerField(help_text="Votes between two ranked systems, the ones fitted.")
    systems = LeaderboardSystem(many=True)
    model = LeaderboardModelAgreement(allow_null=True)


@extend_schema_serializer(component_name="Leaderboard")
class LeaderboardSerializer(serializers.Serializer):
    campaigns = serializers.ListField(
        child=serializers.IntegerField(), allow_null=True, help_text="Null: pooled over every campaign."
    )
    filters = inline_serializer(
        "LeaderboardAppliedFilters",
        {
            "modalities": serializers.ListField(child=serializers.ChoiceField(choices=["T", "L", "A", "C"])),
            "vocal": serializers.BooleanField(allow_null=True),
            "since": serializers.DateTimeField(allow_null=True),
            "until": serializers.DateTimeField(allow_null=True, help_text="Exclusive."),
        },
    )
    min_votes = serializers.IntegerField()
    confidence = serializers.FloatField()
    bootstrap_samples = serializers.IntegerField()
    model_version = inline_serializer(
        "LeaderboardModelVersion", {"id": serializers.IntegerField(), "name": serializers.CharField()}, allow_null=True
    )
    questions = inline_serializer(
        "LeaderboardQuestions", {"alignment": LeaderboardQuestion(), "musicality": LeaderboardQuestion()}
    )


class CampaignLeaderboardApi(APIView):
    """Bradley–Terry leaderboard of a campaign's generating systems, human and reward model."""

    permission_classes = [IsStaff]

    InputSerializer = LeaderboardParamsSerializer
    OutputSerializer = LeaderboardSerializer

    @extend_schema(
        operation_id="campaign_leaderboard",
        summary="Generator leaderboard with bootstrap intervals, rank ranges and model-vs-human Kendall tau",
        parameters=[LeaderboardParamsSerializer],
        responses={200: LeaderboardSerializer, 400: error_response(), 403: error_response(), 404: error_response()},
        tags=["agreement"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        board = system_leaderboard(query=params.to_query((campaign.pk,)))
        return Response(self.OutputSerializer(board).data)


class LeaderboardApi(APIView):
    """The same leaderboard pooled across every campaign (systems matched by name)."""

    permission_classes = [IsStaff]

    InputSerializer = LeaderboardParamsSerializer
    OutputSerializer = LeaderboardSerializer

    @extend_schema(
        operation_id="leaderboard",
        summary="Generator leaderboard across all campaigns",
        parameters=[LeaderboardParamsSerializer],
        responses={200: LeaderboardSerializer, 400: error_response(), 403: error_response()},
        tags=["agreement"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        board = system_leaderboard(query=params.to_query(None))
        return Response(self.OutputSerializer(board).data)
