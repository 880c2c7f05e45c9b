import pytest
import torch

from rm_service.core.model import RewardModel, RewardModelConfig, count_parameters

from .conftest import collate, random_item, tiny_config


def _model(**overrides: object) -> RewardModel:
    torch.manual_seed(0)
    return RewardModel(tiny_config(**overrides)).eval()


def test_it_outputs_alignment_and_musicality_per_item() -> None:
    model = _model()
    batch = collate([random_item(3, 2, 4, 5, seed=1), random_item(1, 0, 0, 7, seed=2)])
    scores = model(batch)
    assert scores.shape == (2, 2)
    assert torch.isfinite(scores).all()


def test_it_has_about_thirty_million_parameters_at_the_paper_config() -> None:
    # The paper's architecture (no reference path, no text path, mean pooling) is "30M"; our additions
    # (reference cross-attention and similarities, text path, mean+max pooling) may add at most 10% on top.
    paper = RewardModel(RewardModelConfig(ref_path=False, text_path=False, pooling="mean"))
    default = RewardModel(RewardModelConfig())
    n_paper, n_default = count_parameters(paper), count_parameters(default)
    print(f"paper-architecture trainable parameters: {n_paper:,}; with our additions: {n_default:,}")
    assert 28_000_000 < n_paper < 34_000_000
    assert n_paper < n_default < 1.10 * n_paper
    assert len(default.prompt_transformer.blocks) == 4 and len(default.joint_transformer.blocks) == 1


def test_it_adds_an_input_projection_only_when_dims_differ() -> None:
    assert isinstance(RewardModel(tiny_config(audio_in_dim=32, text_in_dim=32)).audio_proj, torch.nn.Identity)
    model = RewardModel(tiny_config())
    assert isinstance(model.audio_proj, torch.nn.Linear) and model.audio_proj.in_features == 10
    assert isinstance(model.text_proj, torch.nn.Linear) and model.text_proj.in_features == 12


@pytest.mark.parametrize("empty", ["skip", "learned"])
def test_it_is_batch_invariant(empty: str) -> None:
    # Items with different lengths and different sets of present modalities: each item's scores must be
    # the same alone, in a batch, in another order, and with extra padding.
    model = _model(empty_text=empty, empty_lyrics=empty, empty_ref_audio=empty)
    items = [
        random_item(3, 0, 0, 5, seed=1),  # T
        random_item(2, 6, 0, 9, seed=2),  # L
        random_item(4, 0, 8, 3, seed=3),  # A
        random_item(1, 3, 2, 11, seed=4),  # C
        random_item(0, 0, 0, 4, seed=5),  # no prompt at all
    ]
    with torch.no_grad():
        alone = torch.cat([model(collate([item])) for item in items])
        together = model(collate(items))
        reversed_order = model(collate(items[::-1])).flip(0)
        padded = collate(items)
        padded.audio = torch.cat([padded.audio, torch.randn(5, 6, 10) * 100], dim=1)  # garbage in padding
        padded.audio_mask = torch.cat([padded.audio_mask, torch.zeros(5, 6, dtype=torch.bool)], dim=1)
        padded.ref_audio = torch.cat([padded.ref_audio, torch.randn(5, 2, 10) * 100], dim=1)
        padded.ref_audio_mask = torch.cat([padded.ref_audio_mask, torch.zeros(5, 2, dtype=torch.bool)], dim=1)
        with_padding = model(padded)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reversed_order, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_padding, alone, atol=1e-5, rtol=1e-5)


def test_it_ignores_the_content_of_masked_positions_of_an_empty_modality() -> None:
    model = _model()
    item = random_item(3, 0, 0, 5, seed=1)
    batch = collate([item, random_item(2, 4, 6, 5, seed=2)])  # row 0 gets padded lyrics/ref slots
    with torch.no_grad():
        before = model(batch)[0]
        batch.lyrics[0] = torch.randn_like(batch.lyrics[0]) * 50
        batch.ref_audio[0] = torch.randn_like(batch.ref_audio[0]) * 50
        after = model(batch)[0]
    torch.testing.assert_close(before, after)


def test_it_handles_an_instruction_with_every_prompt_modality_empty_without_nans() -> None:
    model = RewardModel(tiny_config()).train()
    batch = collate([random_item(0, 0, 0, 6, seed=1), random_item(0, 0, 0, 3, seed=2)])
    scores = model(batch)
    scores.sum().backward()
    assert torch.isfinite(scores).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_it_uses_the_prompt() -> None:
    model = _model()
    audio_only = random_item(0, 0, 0, 6, seed=1)
    with_text = [random_item(4, 0, 0, 1, seed=9)[0], *audio_only[1:]]
    with torch.no_grad():
        a, b = model(collate([audio_only]))[0], model(collate([with_text]))[0]
    assert not torch.allclose(a, b)


def test_it_tells_text_from_lyrics_through_type_embeddings() -> None:
    # The same tokens as text or as lyrics go through the same projection; only the type embedding
    # distinguishes them, so without it the two placements score identically.
    tokens = torch.randn(3, 12)
    audio = torch.randn(5, 10)
    as_text = [tokens, torch.zeros(0, 12), torch.zeros(0, 10), audio]
    as_lyrics = [torch.zeros(0, 12), tokens, torch.zeros(0, 10), audio]
    with torch.no_grad():
        typed = _model(type_embeddings=True)
        assert not torch.allclose(typed(collate([as_text])), typed(collate([as_lyrics])))
        untyped = _model(type_embeddings=False, text_path=False)  # the text path reads text, never lyrics
        torch.testing.assert_close(untyped(collate([as_text])), untyped(collate([as_lyrics])))


def test_it_rejects_items_without_evaluated_audio() -> None:
    model = _model()
    batch = collate([random_item(2, 0, 0, 0, seed=1), random_item(2, 0, 0, 3, seed=2)])
    with pytest.raises(ValueError, match="evaluated-audio"):
        model(batch)


def test_it_validates_its_config() -> None:
    with pytest.raises(ValueError, match="empty_text"):
        RewardModelConfig(empty_text="zeros")
    with pytest.raises(ValueError, match="unknown RewardModelConfig fields"):
        RewardModelConfig.from_dict({"d_model": 8, "depth": 3})
    cfg = tiny_config(empty_lyrics="learned")
    assert RewardModelConfig.from_dict(cfg.to_dict()) == cfg


def test_it_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = RewardModel(tiny_config())
    batch = collate([random_item(3, 1, 2, 5, seed=s) for s in range(8)])
    target = torch.randn(8, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first: float | None = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(batch), target)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first is not None and float(loss.detach()) < 0.02 * first


@pytest.mark.parametrize(("pooling", "audio_pool"), [("mean_max", 1), ("attention", 1), ("mean", 3), ("mean_max", 4)])
def test_it_is_batch_invariant_on_the_reference_path(pooling: str, audio_pool: int) -> None:
    model = _model(pooling=pooling, audio_pool=audio_pool)
    assert model.config.ref_path
    items = [
        random_item(2, 0, 7, 5, seed=1),  # A
        random_item(3, 0, 0, 9, seed=2),  # T: no reference, sharing a batch with references
        random_item(1, 2, 13, 11, seed=3),  # C
        random_item(0, 0, 2, 1, seed=4),  # a one-token clip against a short reference
    ]
    with torch.no_grad():
        alone = torch.cat([model(collate([item])) for item in items])
        together = model(collate(items))
        padded = collate(items)
        padded.audio = torch.cat([padded.audio, torch.randn(4, 5, 10) * 100], dim=1)
        padded.audio_mask = torch.cat([padded.audio_mask, torch.zeros(4, 5, dtype=torch.bool)], dim=1)
        padded.ref_audio = torch.cat([padded.ref_audio, torch.randn(4, 3, 10) * 100], dim=1)
        padded.ref_audio_mask = torch.cat([padded.ref_audio_mask, torch.zeros(4, 3, dtype=torch.bool)], dim=1)
        with_padding = model(padded)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_padding, alone, atol=1e-5, rtol=1e-5)


def test_it_adds_the_reference_term_to_alignment_only_and_only_with_a_reference() -> None:
    model = _model()
    with_ref = collate([random_item(2, 0, 6, 5, seed=1)])
    without_ref = collate([random_item(2, 0, 0, 5, seed=1)])
    with torch.no_grad():
        before = model(with_ref), model(without_ref)
        model.ref_head[-1].bias.add_(3.0)  # type: ignore[operator]  # the similarity MLP output
        after = model(with_ref), model(without_ref)
    assert float(after[0][0, 0] - before[0][0, 0]) == pytest.approx(3.0, abs=1e-5)
    torch.testing.assert_close(after[0][:, 1], before[0][:, 1])
    torch.testing.assert_close(after[1], before[1])


def test_it_reads_configs_written_before_the_reference_path_as_the_old_architecture() -> None:
    old = {
        k: v
        for k, v in tiny_config().to_dict().items()
        if k not in ("ref_path", "text_path", "pooling", "audio_pool", "sim_dim")
    }
    config = RewardModelConfig.from_dict(old)
    assert (config.ref_path, config.pooling, config.audio_pool) == (False, "mean", 1)
    model = RewardModel(config)
    assert not hasattr(model, "ref_head") and model.head[0].normalized_shape == (32,)
    with pytest.raises(ValueError, match="pooling"):
        tiny_config(pooling="median")


def test_it_learns_to_tell_a_candidate_from_the_reference_track_from_another_on_new_items() -> None:
    # Candidates that are noisy, reordered copies of the reference vs unrelated clips (both drawn from the
    # same distribution, so only the comparison with the reference tells them apart): learnt from a few
    # batches and generalised to unseen items.
    torch.manual_seed(0)
    model = RewardModel(tiny_config())
    g = torch.Generator().manual_seed(0)

    def batch(n: int) -> tuple[object, object]:
        refs = [torch.randn(8, 10, generator=g) + torch.randn(1, 10, generator=g) * 2 for _ in range(n)]
        same = [r[torch.randperm(8, generator=g)[:6]] + 0.3 * torch.randn(6, 10, generator=g) for r in refs]
        other = [torch.randn(6, 10, generator=g) + torch.randn(1, 10, generator=g) * 2 for _ in range(n)]
        text = torch.zeros(0, 12)
        a = collate([[text, text, r, s] for r, s in zip(refs, same, strict=True)])
        b = collate([[text, text, r, o] for r, o in zip(refs, other, strict=True)])
        return a, b

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        a, b = batch(16)
        loss = torch.nn.functional.softplus(model(b)[:, 0] - model(a)[:, 0]).mean()  # type: ignore[arg-type]
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, b = batch(64)
    with torch.no_grad():
        accuracy = float((model(a)[:, 0] > model(b)[:, 0]).float().mean())  # type: ignore[arg-type]
    assert accuracy >= 0.9
