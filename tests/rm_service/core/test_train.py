import math
from pathlib import Path

import pytest
import torch

from rm_service.core.checkpoint import load_checkpoint
from rm_service.core.data import DataError
from rm_service.core.score import Scorer, load_scorer
from rm_service.core.train import (
    MosCalibration,
    TrainConfig,
    TrainingCancelled,
    TrainProgress,
    batch_indices,
    bradley_terry_loss,
    lr_at,
    mos_loss,
    train,
    train_from_export,
)

from .conftest import CountingEncoder, tiny_train_config


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_it_computes_the_bradley_terry_loss_by_hand() -> None:
    diff = torch.tensor([2.0, -1.0])
    wins = torch.tensor([True, False])
    expected = -(math.log(_sigmoid(2.0)) + math.log(1.0 - _sigmoid(-1.0))) / 2
    assert float(bradley_terry_loss(diff, wins)) == pytest.approx(expected, abs=1e-6)


def test_it_smooths_labels_to_point_nine_and_point_one() -> None:
    diff = torch.tensor([2.0, -1.0])
    wins = torch.tensor([True, True])
    per_item = [-(0.9 * math.log(_sigmoid(d)) + 0.1 * math.log(1.0 - _sigmoid(d))) for d in (2.0, -1.0)]
    assert float(bradley_terry_loss(diff, wins, smoothing=0.2)) == pytest.approx(sum(per_item) / 2, abs=1e-6)
    # With smoothing the optimum margin is finite: log(0.9 / 0.1).
    margin = torch.tensor([math.log(9.0)], requires_grad=True)
    bradley_terry_loss(margin, torch.tensor([True]), smoothing=0.2).backward()
    assert margin.grad is not None and abs(float(margin.grad)) < 1e-6


def test_it_regresses_ratings_through_a_tanh_with_learnable_scale_and_offset() -> None:
    head = MosCalibration(1.0, 5.0)
    assert head(torch.zeros(1, 2)).tolist() == [[3.0, 3.0]]  # offset = midpoint
    assert head(torch.full((1, 2), 50.0)).tolist() == [[5.0, 5.0]]  # scale = half range
    # Ratings on a 2..4 scale: learning the scale and offset (and scores) drives the loss to ~0.
    scores = torch.zeros(6, 2, requires_grad=True)
    ratings = torch.tensor([2.0, 2.5, 3.0, 3.2, 3.8, 4.0])
    opt = torch.optim.Adam([scores, *head.parameters()], lr=0.05)
    for _ in range(400):
        loss = mos_loss(head(scores)[:, 1], ratings, head.half_range)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1e-3
    assert torch.argsort(scores[:, 1]).tolist() == [0, 1, 2, 3, 4, 5]  # scores keep the rating order


def test_it_warms_up_then_decays_the_learning_rate() -> None:
    lrs = [lr_at(s, total=100, warmup=10, base=1.0, min_ratio=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lr_at(100, total=100, warmup=10, base=1.0, min_ratio=0.1) == pytest.approx(0.1)


def test_it_draws_batches_as_a_pure_function_of_the_step() -> None:
    assert batch_indices(10, 4, 3, 7) == batch_indices(10, 4, 3, 7)
    epoch = [i for step in range(5) for i in batch_indices(10, 2, step, 7)]
    assert sorted(epoch) == list(range(10))  # one epoch visits every example once


def test_it_round_trips_a_config_through_json() -> None:
    config = tiny_train_config(mos_range=(0.0, 10.0))
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"epochs": 3})


def _train(root: Path, out: Path, cache: Path, encoder: CountingEncoder, **kwargs):  # type: ignore[no-untyped-def]
    return train(
        train_jsonl=root / "train.jsonl",
        val_jsonl=root / "validation.jsonl",
        dataset_root=root,
        out_dir=out,
        config=kwargs.pop("config", tiny_train_config()),
        cache_dir=cache,
        encoder=encoder,
        **kwargs,
    )


def test_it_trains_and_round_trips_the_checkpoint_with_identical_scores(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    events: list[TrainProgress] = []
    result = _train(tiny_synthetic, tmp_path / "run", shared_cache, hash_encoder, progress=events.append)
    assert result.status == "succeeded" and result.steps == 8
    assert [e.step for e in events if e.stage == "human"] == list(range(1, 9))
    assert events[-1].stage == "done"
    assert {e.step for e in events if e.val is not None} == {4, 8}
    assert all(math.isfinite(e.loss) for e in events)

    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.encoder_id == hash_encoder.id
    assert ckpt.metadata["data_sha256"]["train"] and ckpt.metadata["metrics"]["best_val"] is not None
    assert not any("scale" in k or "offset" in k for k in ckpt.model.state_dict())  # MOS calibration dropped

    items = [
        {"audio": tiny_synthetic / "audio" / "p0000_0_a.wav", "text": "a fast piano piece"},
        {"audio": tiny_synthetic / "audio" / "p0001_0_b.wav", "text": "", "lyrics": "la la"},
    ]
    best = load_checkpoint(tmp_path / "run" / "best")
    in_memory = Scorer(best.model, hash_encoder).score_batch(items)
    reloaded = load_scorer(result.checkpoint, encoder=hash_encoder).score_batch(items)
    assert (in_memory == reloaded).all()


def test_it_resumes_after_being_killed_exactly_as_if_uninterrupted(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    full = _train(tiny_synthetic, tmp_path / "full", shared_cache, hash_encoder)

    def kill_at_step_5(event: TrainProgress) -> None:
        if event.step == 5:
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing is saved at this point

    with pytest.raises(KeyboardInterrupt):
        _train(tiny_synthetic, tmp_path / "killed", shared_cache, hash_encoder, progress=kill_at_step_5)
    assert (tmp_path / "killed" / "state" / "LATEST").read_text() == "step-000003"
    with pytest.raises(ValueError, match="resume=True"):
        _train(tiny_synthetic, tmp_path / "killed", shared_cache, hash_encoder)
    resumed_steps: list[int] = []
    resumed = _train(
        tiny_synthetic,
        tmp_path / "killed",
        shared_cache,
        hash_encoder,
        resume=True,
        progress=lambda e: resumed_steps.append(e.step),
    )
    assert resumed_steps[0] == 4 and resumed.steps == 8
    a = load_checkpoint(full.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_it_cancels_from_the_progress_callback_and_can_resume(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    def cancel_at_step_2(event: TrainProgress) -> None:
        if event.step == 2:
            raise TrainingCancelled

    cancelled = _train(tiny_synthetic, tmp_path / "run", shared_cache, hash_encoder, progress=cancel_at_step_2)
    assert cancelled.status == "cancelled" and cancelled.checkpoint is None and cancelled.steps == 2
    assert (tmp_path / "run" / "state" / "LATEST").read_text() == "step-000002"
    resumed = _train(tiny_synthetic, tmp_path / "run", shared_cache, hash_encoder, resume=True)
    assert resumed.status == "succeeded" and resumed.steps == 8


def test_it_refuses_to_resume_with_another_config(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    _train(tiny_synthetic, tmp_path / "run", shared_cache, hash_encoder, config=tiny_train_config(stage2_max_steps=3))
    with pytest.raises(ValueError, match="differ"):
        _train(
            tiny_synthetic,
            tmp_path / "run",
            shared_cache,
            hash_encoder,
            resume=True,
            config=tiny_train_config(stage2_max_steps=3, lr=1e-2),
        )


def test_it_stops_early_when_validation_stops_improving(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    config = tiny_train_config(lr=0.0, warmup_steps=1, stage2_max_steps=40, eval_every=2, patience=2)
    result = _train(tiny_synthetic, tmp_path / "run", shared_cache, hash_encoder, config=config)
    # lr 0: the first validation is the best and the next two do not beat it.
    assert result.steps == 6
    assert result.metrics["best_val"]["step"] == 2


def test_it_pretrains_on_pseudo_labels_then_fine_tunes(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    import json

    from rm_service.core.data import read_jsonl
    from rm_service.core.pseudo import make_pseudo_labels

    kept, _ = make_pseudo_labels((str(n), r) for n, r in read_jsonl(tiny_synthetic / "judged.jsonl"))
    pseudo = tmp_path / "pseudo.jsonl"
    pseudo.write_text("".join(json.dumps(r) + "\n" for r in kept))
    stages: list[str] = []
    result = _train(
        tiny_synthetic,
        tmp_path / "run",
        shared_cache,
        hash_encoder,
        pseudo_jsonl=pseudo,
        progress=lambda e: stages.append(e.stage),
    )
    assert stages.count("pseudo") == 4 and stages.count("human") == 8
    assert result.steps == 12
    assert any(h["stage"] == "pseudo-end" for h in result.metrics["history"])


def test_it_trains_from_an_export_with_a_votes_file(
    tiny_synthetic: Path, shared_cache: Path, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "audio").symlink_to(tiny_synthetic / "audio")
    rows = [(tiny_synthetic / f"{s}.jsonl").read_text() for s in ("train", "validation", "test")]
    (export / "votes.jsonl").write_text("".join(rows))
    result = train_from_export(
        export,
        out_dir=tmp_path / "run",
        config=tiny_train_config(stage2_max_steps=4),
        cache_dir=shared_cache,
        encoder=hash_encoder,
    )
    assert result.status == "succeeded"
    assert result.metrics["best_val"] is not None  # the validation rows of votes.jsonl were used


def test_it_rejects_training_data_without_trainable_rows(tmp_path: Path, hash_encoder: CountingEncoder) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "train.jsonl").write_text(
        '{"audio-path": "a.wav", "audio2": "a.wav", "preference-alignment": "both",'
        ' "preference-musicality": "neither"}\n'
    )
    with pytest.raises(ValueError, match="no trainable rows"):
        train(
            train_jsonl=tmp_path / "train.jsonl",
            dataset_root=tmp_path,
            out_dir=tmp_path / "run",
            config=tiny_train_config(),
            encoder=hash_encoder,
        )
    (tmp_path / "bad.jsonl").write_text(
        '{"audio-path": "missing.wav", "audio2": "a.wav", "preference-alignment": "model_a"}\n'
    )
    with pytest.raises(DataError, match="bad.jsonl:1: .*missing.wav"):
        train(
            train_jsonl=tmp_path / "bad.jsonl",
            dataset_root=tmp_path,
            out_dir=tmp_path / "run2",
            config=tiny_train_config(),
            encoder=hash_encoder,
        )
