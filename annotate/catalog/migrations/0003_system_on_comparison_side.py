"""The generating system moves from the stored clip to the comparison side that uses it.

Existing comparisons take their clips' names, so nothing is lost; then ``Clip.system`` goes.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_systems_to_comparisons(apps, schema_editor):  # type: ignore[no-untyped-def]
    Clip = apps.get_model("catalog", "Clip")
    Comparison = apps.get_model("catalog", "Comparison")
    Comparison.objects.update(
        system_a=Subquery(Clip.objects.filter(pk=OuterRef("clip_a_id")).values("system")[:1]),
        system_b=Subquery(Clip.objects.filter(pk=OuterRef("clip_b_id")).values("system")[:1]),
    )


def copy_systems_to_clips(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Reverse: a clip takes the first name a comparison gives it (names that differ can't be kept)."""
    Clip = apps.get_model("catalog", "Clip")
    Comparison = apps.get_model("catalog", "Comparison")
    for comparison in Comparison.objects.order_by("pk").iterator():
        Clip.objects.filter(pk=comparison.clip_a_id, system="").update(system=comparison.system_a)
        Clip.objects.filter(pk=comparison.clip_b_id, system="").update(system=comparison.system_b)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_presentation_renditions"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparison",
            name="system_a",
            field=models.CharField(blank=True, db_index=True, help_text="System of clip_a.", max_length=200),
        ),
        migrations.AddField(
            model_name="comparison",
            name="system_b",
            field=models.CharField(blank=True, db_index=True, help_text="System of clip_b.", max_length=200),
        ),
        migrations.RunPython(copy_systems_to_comparisons, copy_systems_to_clips),
        migrations.RemoveField(
            model_name="clip",
            name="system",
        ),
    ]
