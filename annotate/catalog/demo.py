"""A small, deterministic demo campaign synthesised offline with the reward-model core's renderer.

The demo goes through the real import path: it writes audio files and a JSONL
manifest, then calls ``campaign_import``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import soundfile as sf
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.catalog.services import ImportReport, campaign_import
from rm_service.core import MusicSpec, describe, render

DEMO_CAMPAIGN = "Demo: compositional instructions"
CLIP_SECONDS = 12.0
SAMPLE_RATE = 24000

# Systems differ by how they damage the same performance; names are never shown to annotators.
SYSTEMS: dict[str, dict[str, object]] = {
    "clean-gen": {},
    "detune-gen": {"detune_cents": 35.0, "wrong_notes": 0.25},
    "noisy-gen": {"noise_snr_db": 6.0},
    "shaky-gen": {"tempo_jitter": 0.8},
    "clipped-gen": {"clipping": 0.85},
}
LYRICS = [
    "Morning light on the harbour\nboats are leaving one by one\nI will wait here by the water\nuntil the day is done",
    "Run, run through the city\nneon rain on my face\nevery street is a chorus\nevery heart keeps the pace",
    "Quiet snow on the mountain\nlanterns low in the hall\nsing it soft, sing it slowly\nlet the evening fall",
    "Hands up high, feel the thunder\ndrums are calling us home\n"
    "we were strangers this morning\nnow we never walk alone",
]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    is_staff: bool


ACCOUNTS = (
    DemoAccount("admin", "demo-admin-2026", True),
    DemoAccount("annotator1", "demo-listen-1", False),
    DemoAccount("annotator2", "demo-listen-2", False),
)


@dataclass(frozen=True)
class _Item:
    prompt_id: str
    spec: MusicSpec
    lyrics: str
    reference: MusicSpec | None
    systems: tuple[str, str]
    gold_musicality: str = ""


def _items() -> list[_Item]:
    bases = [
        MusicSpec(tempo_bpm=132, mode="major", instrument="piano", register=1),
        MusicSpec(tempo_bpm=78, mode="minor", instrument="strings", register=0, drums=False),
        MusicSpec(tempo_bpm=110, mode="major", instrument="pluck", register=0),
        MusicSpec(tempo_bpm=95, mode="minor", instrument="organ", register=-1),
    ]
    pairs = [
        ("clean-gen", "detune-gen"),
        ("noisy-gen", "clean-gen"),
        ("shaky-gen", "clipped-gen"),
        ("clean-gen", "clipped-gen"),
    ]
    items: list[_Item] = []
    for index, base in enumerate(bases):
        # T: text only.
        items.append(
            _Item(
                f"demo-T{index}",
                base,
                "",
                None,
                pairs[index],
                gold_musicality="a" if pairs[index] == ("clean-gen", "clipped-gen") else "",
            )
        )
        # L: text + lyrics, sung.
        items.append(_Item(f"demo-L{index}", replace(base, vocal=True), LYRICS[index], None, pairs[(index + 1) % 4]))
        # A: text + reference audio in another key and instrument.
        reference = replace(
            base, root_midi=base.root_midi + 5, instrument="organ" if base.instrument != "organ" else "piano"
        )
        items.append(_Item(f"demo-A{index}", base, "", reference, pairs[(index + 2) % 4]))
        # C: text + lyrics + reference audio.
        items.append(
            _Item(
                f"demo-C{index}", replace(base, vocal=True), LYRICS[(index + 1) % 4], reference, pairs[(index + 3) % 4]
            )
        )
    return items


def _render_to(path: Path, spec: MusicSpec, seed: int, stereo: bool) -> str:
    # Keep existing files: Ogg streams get a random serial number, so re-encoding changes the hash.
    if path.exists():
        return path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = render(spec, duration_s=CLIP_SECONDS, sr=SAMPLE_RATE, seed=seed, stereo=stereo)
    sf.write(str(path), audio, SAMPLE_RATE)
    return path.name


def demo_files_write(*, out_dir: Path) -> Path:
    """Synthesise the demo audio and manifest under ``out_dir``; return the manifest path."""
    rows = []
    for number, item in enumerate(_items()):
        seed = 1000 + number
        # Vary formats and channel counts so the demo exercises the importer.
        suffix = (".wav", ".flac", ".ogg")[number % 3]
        stereo = number % 2 == 0
        names = []
        for system in item.systems:
            spec = replace(item.spec, **SYSTEMS[system])  # type: ignore[arg-type]
            names.append(_render_to(out_dir / system / f"{item.prompt_id}{suffix}", spec, seed, stereo))
        ref_path = ""
        if item.reference is not None:
            _render_to(out_dir / "references" / f"{item.prompt_id}.wav", item.reference, seed + 500, False)
            ref_path = f"references/{item.prompt_id}.wav"
        text = describe(item.spec)
        if item.reference is not None:
            text += " Match the style and groove of the reference clip."
        row = {
            "prompt id": item.prompt_id,
            "prompt": text,
            "lyrics": item.lyrics,
            "ref-audio-path": ref_path,
            "audio-path": f"{item.systems[0]}/{names[0]}",
            "audio2": f"{item.systems[1]}/{names[1]}",
            "model_a": item.systems[0],
            "model_b": item.systems[1],
            "vocal": item.spec.vocal,
        }
        if item.gold_musicality:
            row["gold-musicality"] = "model_a" if item.gold_musicality == "a" else "model_b"
        rows.append(row)
    manifest = out_dir / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return manifest


def demo_accounts_ensure() -> list[DemoAccount]:
    """Create (or reset) the demo accounts with their documented passwords."""
    user_model = get_user_model()
    with transaction.atomic():
        for account in ACCOUNTS:
            user, _ = user_model.objects.get_or_create(username=account.username)
            user.is_staff = account.is_staff
            user.is_superuser = account.is_staff
            user.set_password(account.password)
            user.save()
    return list(ACCOUNTS)


def demo_campaign_create(*, out_dir: Path | None = None) -> ImportReport:
    """Build the demo campaign (idempotent) and its accounts."""
    out_dir = out_dir or Path(settings.VAR_DIR) / "demo-audio"
    manifest = demo_files_write(out_dir=out_dir)
    report = campaign_import(manifest_path=manifest, audio_root=out_dir, campaign_name=DEMO_CAMPAIGN, activate=True)
    campaign = report.campaign
    if report.campaign_created:
        campaign.description = (
            "Sixteen synthesised pairs across all four instruction types (text, lyrics, reference audio, "
            "and all three). Listen to both clips, then judge alignment and musicality."
        )
        # ``manage.py demo`` adds six simulated votes per comparison; two more slots leave every comparison
        # to each demo annotator (a target of 2 was full before anyone logged in).
        campaign.overlap_target = 8
        campaign.save(update_fields=["description", "overlap_target"])
    demo_accounts_ensure()
    return report
