import json
import subprocess
import sys
from pathlib import Path

import pytest

from rm_service.core.cli import main


@pytest.mark.parametrize("command", ["train", "score", "rank", "evaluate", "pseudo-labels", "synthetic", "info"])
def test_it_documents_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m rm_service " + command in capsys.readouterr().out


def test_it_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "rm_service", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "train" in done.stdout and "pseudo-labels" in done.stdout


def test_it_rejects_a_missing_file_with_its_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--train", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert f"file not found: {tmp_path / 'nope.jsonl'}" in capsys.readouterr().err


def test_it_reports_a_bad_jsonl_line_with_its_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "train.jsonl"
    rows.write_text('{"audio-path": "a.wav", "musicality": 3}\n{"audio-path": "b.wav", "audio2": \n')
    code = main(
        [
            "train",
            "--train",
            str(rows),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--text-model",
            "hash",
            "--device",
            "cpu",
        ]
    )
    assert code == 2
    assert f"error: {rows}:2: invalid JSON" in capsys.readouterr().err


def test_it_reports_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "a.wav"
    clip.touch()
    code = main(["score", "--checkpoint", str(tmp_path / "missing"), str(clip), "--device", "cpu"])
    assert code == 2
    assert f"error: checkpoint not found: {tmp_path / 'missing'}" in capsys.readouterr().err


def test_it_trains_scores_ranks_and_evaluates_end_to_end(
    tiny_synthetic: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--train",
                str(tiny_synthetic / "train.jsonl"),
                "--val",
                str(tiny_synthetic / "validation.jsonl"),
                "--out",
                str(run),
                "--preset",
                "tiny",
                "--text-model",
                "hash",
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--device",
                "cpu",
                "--cache-dir",
                str(shared_cache),
            ]
        )
        == 0
    )
    trained = json.loads(capsys.readouterr().out)
    assert trained["status"] == "succeeded" and trained["steps"] == 3 and trained["trainable_parameters"] > 0
    ckpt = trained["checkpoint"]

    clips = sorted((tiny_synthetic / "audio").glob("p*.wav"))[:3]
    assert (
        main(["score", "--checkpoint", ckpt, *map(str, clips), "--text", "a fast piano piece", "--device", "cpu"]) == 0
    )
    scored = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["audio"] for s in scored] == list(map(str, clips)) and all("musicality" in s for s in scored)

    assert main(["score", "--checkpoint", ckpt, "--jsonl", str(tiny_synthetic / "test.jsonl"), "--device", "cpu"]) == 0
    assert all({"line", "field", "alignment"} <= json.loads(x).keys() for x in capsys.readouterr().out.splitlines())

    assert (
        main(
            [
                "rank",
                "--checkpoint",
                ckpt,
                *map(str, clips),
                "--text",
                "a fast piano piece",
                "--top-k",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    ranked = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in ranked] == [1, 2, 3] and [r["selected"] for r in ranked] == [True, True, False]
    assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"]

    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                ckpt,
                "--jsonl",
                str(tiny_synthetic / "test.jsonl"),
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert {"alignment", "musicality"} <= {json.loads(x)["task"] for x in capsys.readouterr().out.splitlines()}
    assert all((out / f).is_file() for f in ("metrics_summary.csv", "metrics_detail.csv", "metrics.json"))

    assert main(["info", ckpt]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["d_model"] == 64


def test_it_turns_judged_pairs_into_pseudo_labels(
    tiny_synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "pseudo.jsonl", tmp_path / "report.json"
    assert (
        main(["pseudo-labels", str(tiny_synthetic / "judged.jsonl"), "--out", str(out), "--report", str(report)]) == 0
    )
    summary = json.loads(report.read_text())
    assert summary["rows_in"] == 16 and 0 < summary["rows_kept"] < 16  # the simulated judge is position-biased
    assert len(out.read_text().splitlines()) == summary["rows_kept"]
    assert json.loads(capsys.readouterr().out) == summary
