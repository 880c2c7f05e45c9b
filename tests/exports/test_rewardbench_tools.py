"""The benchmark's own tools, unchanged, on an export: the compatibility contract, tested as a user runs it.

``inference_benchmark.py`` loads the project's adapter through ``--model_class_path`` and scores the export's
``test.jsonl``; ``evaluate_results.py`` reads its results. Every detail group of the evaluator must be filled
(modality words, ref/no_ref, instru/vocal, confidence x ref), and its headline accuracies must equal the
project's own ``evaluate``. The tools are not part of this repository: they are looked up in
``$CMI_REWARDBENCH_DIR`` or in ``shared/reference/cmi-rewardbench`` beside the checkout (or above it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rm_service.core.checkpoint import save_checkpoint
from rm_service.core.encoders.builtin import AUDIO_DIM, BuiltinEncoder
from rm_service.core.evaluate import evaluate
from rm_service.core.model import RewardModel, RewardModelConfig
from rm_service.core.score import load_scorer
from tests.exports.conftest import build_dataset
from tests.exports.helpers import read_jsonl, run_export

REPO = Path(__file__).resolve().parents[2]
ADAPTER = "rm_service.core:CMIRewardBenchAdapter"
MODALITIES = {"text", "text+lyrics", "text+ref", "text+lyrics+ref"}


def rewardbench_dir() -> Path | None:
    """Where the benchmark's tools are: $CMI_REWARDBENCH_DIR, else shared/reference/ beside a parent folder."""
    if os.environ.get("CMI_REWARDBENCH_DIR"):
        candidates = [Path(os.environ["CMI_REWARDBENCH_DIR"])]
    else:
        candidates = [parent / "shared" / "reference" / "cmi-rewardbench" for parent in REPO.parents]
    return next((path for path in candidates if (path / "inference_benchmark.py").is_file()), None)


TOOLS = rewardbench_dir()
pytestmark = pytest.mark.skipif(
    TOOLS is None,
    reason="the CMI-RewardBench tools are not on this machine (they are never copied into the repository); "
    "set CMI_REWARDBENCH_DIR to a checkout of github.com/Haiwen-Xia/CMI-RewardBench to run this test",
)


def tiny_checkpoint(path: Path) -> Path:
    """An untrained tiny model on the builtin encoder: the tools' contract, not the model's quality, is tested."""
    torch.manual_seed(0)
    encoder = BuiltinEncoder(text_model="hash")
    config = RewardModelConfig(
        d_model=32, n_heads=2, dim_head=16, prompt_depth=1, joint_depth=1, mlp_dim=16,
        audio_in_dim=AUDIO_DIM, text_in_dim=encoder.text_dim,
    )  # fmt: skip
    model = RewardModel(config)
    return save_checkpoint(
        path, model=model, encoder_name="builtin", encoder_options={"text_model": "hash"}, encoder_id=encoder.id
    )


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    assert TOOLS is not None
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, *args], cwd=TOOLS, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_it_fills_every_detail_group_of_the_unchanged_benchmark_tools(db: None, tmp_path: Path) -> None:
    data = build_dataset(per_cell=3, voters=3)
    _, root = run_export(data.campaign, test_size=16)
    test_rows = read_jsonl(root / "test.jsonl")
    assert {row["modality"] for row in test_rows} == MODALITIES
    checkpoint = tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "run"
    common = ["--dataset_jsonl", str(root / "test.jsonl"), "--dataset_root", str(root), "--device", "cpu"]
    run_tool("inference_benchmark.py", "-c", str(checkpoint), *common, "--model_class_path", ADAPTER,
             "--output_dir", str(out), "--no_run_evaluate")  # fmt: skip
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == len(test_rows) and all(row["inference_valid_a"] for row in results)
    run_tool("evaluate_results.py", "-r", str(out / "results.jsonl"), "--output_dir_abs", str(out / "eval"))

    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    groups: dict[tuple[str, str, str], int] = {}
    for row in metrics["detail"]:
        key = (row["group_key"], row["group_value"], row.get("ref_category") or "")
        groups[key] = groups.get(key, 0) + row["n"]
    print("benchmark detail groups (summed over both tasks):", sorted(groups.items()))
    for modality in MODALITIES:
        assert groups["modality", modality, ""] > 0
    for subset in ("ref", "no_ref"):
        assert groups["ref_subset", subset, ""] > 0
    for kind in ("instru", "vocal"):
        assert groups["modality_type", kind, ""] > 0
    for confidence in ("<3", "=3", ">3"):
        for ref in ("ref", "no_ref"):
            assert groups["confidence", confidence, ref] > 0, (confidence, ref)

    ours = evaluate(
        jsonl=root / "test.jsonl", dataset_root=root, scorer=load_scorer(checkpoint, device="cpu"), out_dir=out / "ours"
    )
    for row in metrics["summary"]:
        assert row["dataset"] == "CMI-Pref"
        print(f"benchmark {row['task']} ACC {row['ACC']:.4f} over {row['n']} rows")
        assert ours.value("CMI-Pref", row["task"], "ACC") == pytest.approx(row["ACC"], abs=1e-12)
