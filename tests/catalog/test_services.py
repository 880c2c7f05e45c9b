from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.conf import settings

from annotate.catalog.audio import PRESENTATION_PROFILE
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison, Instruction
from annotate.catalog.services import ImportValidationError, campaign_import
from tests.factories import write_tone

pytestmark = pytest.mark.django_db


def _write_manifest(root: Path, rows: Sequence[dict | str | bytes]) -> Path:
    manifest = root / "manifest.jsonl"
    with manifest.open("wb") as handle:
        for row in rows:
            if isinstance(row, dict):
                handle.write(json.dumps(row).encode() + b"\n")
            elif isinstance(row, str):
                handle.write(row.encode() + b"\n")
            else:
                handle.write(row + b"\n")
    return manifest


@pytest.fixture(autouse=True)
def _private_media_root(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A media root of this test's own, so "nothing was written" can be checked on disk.
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def audio_root(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    write_tone(root / "sysA" / "p1.wav", seed=1, sr=44100, channels=2)
    write_tone(root / "sysB" / "p1.flac", seed=2, sr=16000)
    sf.write(str(root / "sysA" / "p2.ogg"), 0.3 * np.sin(np.arange(32000) / 7.0).astype(np.float32), 32000)
    sf.write(str(root / "sysB" / "p2.mp3"), 0.3 * np.sin(np.arange(22050) / 5.0).astype(np.float32), 22050)
    write_tone(root / "refs" / "r1.wav", seed=3, seconds=3.0)
    return root


def _good_rows() -> list[dict]:
    return [
        {
            "prompt id": "p1",
            "prompt": "Calm piano",
            "audio-path": "sysA/p1.wav",
            "audio2": "sysB/p1.flac",
            "model_a": "sysA",
            "model_b": "sysB",
        },
        {
            "prompt id": "p2",
            "prompt": "A ballad",
            "lyrics": "line one\nline two",
            "ref-audio-path": "refs/r1.wav",
            "audio-path": "sysA/p2.ogg",
            "audio2": "sysB/p2.mp3",
            "model_a": "sysA",
            "model_b": "sysB",
            "gold-musicality": "model_b",
        },
        {
            "prompt id": "p3",
            "prompt": "Same clips, reference only",
            "ref-audio-path": "refs/r1.wav",
            "audio-path": "sysA/p1.wav",
            "audio2": "sysB/p2.mp3",
            "model_a": "sysA",
            "model_b": "sysB",
            "vocal": "instrumental",
        },
    ]


def test_it_imports_every_supported_format_with_decoded_facts(audio_root: Path, tmp_path: Path) -> None:
    report = campaign_import(
        manifest_path=_write_manifest(tmp_path, _good_rows()), audio_root=audio_root, campaign_name="Batch 1"
    )
    assert report.campaign_created and report.campaign.status == Campaign.Status.DRAFT
    assert report.comparisons_created == 3
    assert report.clips_created == 5
    assert dict(report.by_modality) == {"T": 1, "C": 1, "A": 1}
    assert report.systems == {"sysA": 3, "sysB": 3}
    formats = dict(Clip.objects.values_list("original_name", "format"))
    assert formats == {"p1.wav": "WAV", "p1.flac": "FLAC", "p2.ogg": "OGG", "p2.mp3": "MP3", "r1.wav": "WAV"}
    stereo = Clip.objects.get(original_name="p1.wav")
    assert (stereo.sample_rate, stereo.channels) == (44100, 2)
    assert stereo.duration_s == pytest.approx(2.0)
    assert stereo.is_vocal is False
    assert set(report.campaign.comparisons.values_list("system_a", "system_b")) == {("sysA", "sysB")}
    assert stereo.peaks is not None and len(stereo.peaks) > 100 and max(stereo.peaks) == pytest.approx(1.0)
    assert stereo.file.name is not None
    assert (Path(settings.MEDIA_ROOT) / stereo.file.name).read_bytes() == (audio_root / "sysA/p1.wav").read_bytes()
    ballad = Comparison.objects.get(instruction__prompt_id="p2")
    assert ballad.gold_musicality == "b" and ballad.gold_alignment == ""
    assert ballad.instruction.lyrics == "line one\nline two"
    assert ballad.clip_a.is_vocal is True  # default: vocal when the instruction has lyrics


def test_it_makes_one_presentation_rendition_per_clip_at_the_campaign_target(audio_root: Path, tmp_path: Path) -> None:
    Campaign.objects.create(name="Quiet", presentation_loudness_lufs=-23.0, presentation_true_peak_dbtp=-2.0)
    report = campaign_import(
        manifest_path=_write_manifest(tmp_path, _good_rows()), audio_root=audio_root, campaign_name="Quiet"
    )
    assert report.renditions_created == 5
    renditions = list(ClipRendition.objects.select_related("clip"))
    assert {r.clip.original_name for r in renditions} == {"p1.wav", "p1.flac", "p2.ogg", "p2.mp3", "r1.wav"}
    for rendition in renditions:
        assert (rendition.profile, rendition.target_lufs, rendition.ceiling_dbtp) == (PRESENTATION_PROFILE, -23, -2)
        data = (Path(settings.MEDIA_ROOT) / str(rendition.file.name)).read_bytes()
        # Content-addressed under MEDIA_ROOT/renditions/, never named after the source.
        assert rendition.file.name == f"renditions/{rendition.sha256[:2]}/{rendition.sha256}.mp3"
        assert hashlib.sha256(data).hexdigest() == rendition.sha256 and len(data) == rendition.size_bytes
        assert abs(rendition.loudness_lufs + 23.0) <= 1.0 and rendition.true_peak_dbtp <= -1.9
    # The originals stay as imported, for exports and the reward model.
    wav = Clip.objects.get(original_name="p1.wav")
    assert (Path(settings.MEDIA_ROOT) / str(wav.file.name)).read_bytes() == (audio_root / "sysA/p1.wav").read_bytes()


def test_it_is_idempotent_on_reimport(audio_root: Path, tmp_path: Path) -> None:
    manifest = _write_manifest(tmp_path, _good_rows())
    campaign_import(manifest_path=manifest, audio_root=audio_root, campaign_name="Batch 1")
    files_before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    again = campaign_import(manifest_path=manifest, audio_root=audio_root, campaign_name="Batch 1", activate=True)
    assert (again.comparisons_created, again.comparisons_existing) == (0, 3)
    assert (again.clips_created, again.clips_existing) == (0, 5)
    assert Comparison.objects.count() == 3 and Clip.objects.count() == 5 and Instruction.objects.count() == 3
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files_before
    assert again.campaign.status == Campaign.Status.ACTIVE
    assert again.renditions_created == 0 and ClipRendition.objects.count() == 5


def test_it_treats_a_swapped_pair_as_the_same_comparison(audio_root: Path, tmp_path: Path) -> None:
    row = _good_rows()[0]
    swapped = dict(
        row, **{"audio-path": row["audio2"], "audio2": row["audio-path"], "model_a": "sysB", "model_b": "sysA"}
    )
    report = campaign_import(
        manifest_path=_write_manifest(tmp_path, [row, swapped]), audio_root=audio_root, campaign_name="Batch 1"
    )
    assert (report.comparisons_created, report.comparisons_existing) == (1, 1)


def _assert_nothing_written() -> None:
    assert Campaign.objects.count() == 0
    assert Clip.objects.count() == 0
    assert Comparison.objects.count() == 0
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def _import_expecting_problems(tmp_path: Path, audio_root: Path, rows: list) -> list[str]:
    with pytest.raises(ImportValidationError) as excinfo:
        campaign_import(manifest_path=_write_manifest(tmp_path, rows), audio_root=audio_root, campaign_name="Bad")
    _assert_nothing_written()
    return [str(problem) for problem in excinfo.value.problems]


def _pair(**overrides: object) -> dict:
    row: dict[str, object] = {"prompt": "p", "audio-path": "sysA/p1.wav", "audio2": "sysB/p1.flac"}
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("setup", "row", "expected"),
    [
        (None, _pair(audio2="sysB/missing.wav"), "line 2: audio2 'missing.wav': file not found"),
        ("dir", _pair(audio2="sysB/dir.wav"), "line 2: audio2 'dir.wav': file is not a readable regular file"),
        ("garbage", _pair(audio2="sysB/garbage.wav"), "line 2: audio2 'garbage.wav': audio does not decode"),
        ("empty", _pair(audio2="sysB/empty.wav"), "line 2: audio2 'empty.wav': audio is empty"),
        ("silent", _pair(audio2="sysB/silent.wav"), "line 2: audio2 'silent.wav': audio is silent"),
        ("aiff", _pair(audio2="sysB/tone.aiff"), "line 2: audio2 'tone.aiff': unsupported audio format '.aiff'"),
        ("flac-as-wav", _pair(audio2="sysB/liar.wav"), "extension says WAV but the data is FLAC"),
        (None, _pair(audio2="../outside.wav"), "line 2: audio2 '../outside.wav' escapes the audio root"),
        (None, _pair(audio2="/etc/hostname"), "line 2: audio2 '/etc/hostname' escapes the audio root"),
        (None, _pair(audio2="sysA/p1.wav"), "line 2: audio-path and audio2 are the same audio"),
        ("copy", _pair(audio2="sysB/copy.wav"), "line 2: audio-path and audio2 are the same audio"),
        (None, {"audio-path": "sysA/p1.wav", "audio2": "sysB/p1.flac"}, "line 2: missing required field 'prompt'"),
        (None, _pair(prompt="  "), "line 2: missing required field 'prompt'"),
        (None, _pair(lyrics=["not", "text"]), "line 2: field 'lyrics' must be a string"),
        (None, _pair(vocal="maybe"), "line 2: vocal must be true/false or 'vocal'/'instrumental'"),
        (None, _pair(**{"gold-alignment": "left"}), "line 2: gold-alignment must be 'model_a' or 'model_b'"),
        (None, b'{"prompt": "caf\xe9"}', "line 2: not valid UTF-8"),
        (None, '{"prompt": "x", ', "line 2: malformed JSON"),
        (None, '["a", "list"]', "line 2: each line must be a JSON object"),
    ],
)
def test_it_rejects_a_bad_row_with_its_line_number_and_writes_nothing(
    audio_root: Path, tmp_path: Path, setup: str | None, row: object, expected: str
) -> None:
    sys_b = audio_root / "sysB"
    if setup == "dir":
        (sys_b / "dir.wav").mkdir()
    elif setup == "garbage":
        (sys_b / "garbage.wav").write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    elif setup == "empty":
        sf.write(str(sys_b / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    elif setup == "silent":
        sf.write(str(sys_b / "silent.wav"), np.zeros(16000, dtype=np.float32), 16000)
    elif setup == "aiff":
        sf.write(str(sys_b / "tone.aiff"), 0.3 * np.sin(np.arange(8000) / 5.0), 16000, format="AIFF")
    elif setup == "flac-as-wav":
        sf.write(str(sys_b / "liar.wav"), 0.3 * np.sin(np.arange(8000) / 5.0), 16000, format="FLAC")
    elif setup == "copy":
        (sys_b / "copy.wav").write_bytes((audio_root / "sysA" / "p1.wav").read_bytes())
    good = _good_rows()[0]
    problems = _import_expecting_problems(tmp_path, audio_root, [good, row])
    assert any(expected in problem for problem in problems), problems


def test_it_reports_every_problem_not_just_the_first(audio_root: Path, tmp_path: Path) -> None:
    rows = [_pair(audio2="sysB/nope.wav"), "{broken", _good_rows()[0], _pair(prompt="")]
    problems = _import_expecting_problems(tmp_path, audio_root, rows)
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 2", "line 4"]


def test_it_reuses_stored_audio_under_another_campaigns_system_name(audio_root: Path, tmp_path: Path) -> None:
    first = campaign_import(
        manifest_path=_write_manifest(tmp_path, [_good_rows()[0]]), audio_root=audio_root, campaign_name="First"
    )
    renamed = dict(_good_rows()[0], model_a="renamed")
    second = campaign_import(
        manifest_path=_write_manifest(tmp_path, [renamed]), audio_root=audio_root, campaign_name="Second"
    )
    assert second.clips_created == 0 and second.comparisons_created == 1
    old, new = first.campaign.comparisons.get(), second.campaign.comparisons.get()
    assert old.clip_a_id == new.clip_a_id
    assert (old.system_a, new.system_a) == ("sysA", "renamed")


def test_it_removes_copied_files_when_the_database_write_fails(
    audio_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotate.catalog import services

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_import_row", explode)
    with pytest.raises(RuntimeError):
        campaign_import(
            manifest_path=_write_manifest(tmp_path, _good_rows()), audio_root=audio_root, campaign_name="Doomed"
        )
    _assert_nothing_written()


def test_it_rejects_an_empty_manifest_and_a_missing_audio_root(tmp_path: Path, audio_root: Path) -> None:
    with pytest.raises(ImportValidationError, match="1 problem"):
        campaign_import(manifest_path=_write_manifest(tmp_path, []), audio_root=audio_root, campaign_name="x")
    with pytest.raises(ImportValidationError) as excinfo:
        campaign_import(
            manifest_path=_write_manifest(tmp_path, _good_rows()), audio_root=tmp_path / "nope", campaign_name="x"
        )
    assert "is not a directory" in str(excinfo.value.problems[0])


def test_it_turns_what_the_database_would_refuse_into_line_numbered_errors(
    audio_root: Path, tmp_path: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_PROMPT_MAX_CHARS = 1000
    good = _good_rows()[0]
    hostile: list[dict | str | bytes] = [
        {**good, "prompt": "nul \x00 byte"},
        '{"prompt": "lone \\ud800 surrogate", "audio-path": "sysA/p1.wav", "audio2": "sysB/p1.flac"}',
        {**good, "model_a": "m" * 201},
        {**good, "prompt id": "p" * 201},
        {**good, "prompt": "x" * 1001},
        "[" * 5000 + "]" * 5000,
    ]
    manifest = _write_manifest(tmp_path, hostile)
    with pytest.raises(ImportValidationError) as caught:
        campaign_import(manifest_path=manifest, audio_root=audio_root, campaign_name="Hostile")
    messages = {problem.line: problem.message for problem in caught.value.problems}
    assert "NUL character" in messages[1]
    assert "not valid Unicode" in messages[2]
    assert "'model_a' has 201 characters; the limit is 200" in messages[3]
    assert "'prompt id' has 201 characters" in messages[4]
    assert "'prompt' has 1001 characters; the limit is 1000" in messages[5]
    assert "nested too deeply" in messages[6]
    assert not Campaign.objects.exists() and not Clip.objects.exists()


def test_it_imports_attention_checks_and_refuses_a_bad_flag_with_its_line(audio_root: Path, tmp_path: Path) -> None:
    rows: list[dict] = _good_rows()
    rows[0]["attention_check"] = True
    rows[0]["gold-alignment"] = "model_a"
    rows[2]["attention_check"] = "yes"
    with pytest.raises(ImportValidationError) as refused:
        campaign_import(manifest_path=_write_manifest(tmp_path, rows), audio_root=audio_root, campaign_name="Checks")
    assert [str(p) for p in refused.value.problems] == ["line 3: attention_check must be true or false, got 'yes'"]
    rows[2]["attention_check"] = False
    campaign_import(manifest_path=_write_manifest(tmp_path, rows), audio_root=audio_root, campaign_name="Checks")
    flagged = Comparison.objects.get(instruction__prompt_id="p1")
    assert flagged.is_attention_check and flagged.gold_alignment == "a"
    assert not Comparison.objects.filter(is_attention_check=True).exclude(pk=flagged.pk).exists()
