"""Store every clip's waveform peaks rounded to ``PEAK_DECIMALS`` (3), as they are served: the assignment
payload used to round 1,200 values on every hand-out."""

from django.db import migrations

DECIMALS = 3  # annotate.catalog.audio.PEAK_DECIMALS when this was written
BATCH = 2000


def round_peaks(apps, schema_editor):  # type: ignore[no-untyped-def]
    Clip = apps.get_model("catalog", "Clip")
    changed = []
    for clip in Clip.objects.exclude(peaks=None).only("id", "peaks").iterator(chunk_size=BATCH):
        rounded = [round(float(value), DECIMALS) for value in clip.peaks]
        if rounded != clip.peaks:
            clip.peaks = rounded
            changed.append(clip)
        if len(changed) >= BATCH:
            Clip.objects.bulk_update(changed, ["peaks"])
            changed = []
    Clip.objects.bulk_update(changed, ["peaks"])


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_campaign_import")]

    operations = [migrations.RunPython(round_peaks, migrations.RunPython.noop, elidable=True)]
