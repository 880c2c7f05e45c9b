from __future__ import annotations

from django.contrib import admin

from rm_service.models import ModelVersion, Prediction, ScoringJob, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "is_active", "encoder", "campaign", "created_at")
    list_filter = ("is_active", "encoder")
    readonly_fields = ("is_active", "activated_at", "created_at")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "status", "step", "total_steps", "loss", "attempts", "worker", "created_at")
    list_filter = ("status", "encoder", "preset")
    readonly_fields = (
        "status",
        "step",
        "total_steps",
        "loss",
        "val_metrics",
        "history",
        "worker",
        "heartbeat_at",
        "attempts",
        "model_version",
        "started_at",
        "finished_at",
        "created_at",
    )


@admin.register(ScoringJob)
class ScoringJobAdmin(admin.ModelAdmin):
    list_display = ("public_id", "kind", "status", "model_version", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
    readonly_fields = ("public_id", "items", "params", "result", "error", "worker", "heartbeat_at")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = (
        "comparison",
        "model_version",
        "alignment_choice",
        "alignment_prob_a",
        "musicality_choice",
        "musicality_prob_a",
    )
    list_filter = ("model_version",)
    raw_id_fields = ("comparison",)
