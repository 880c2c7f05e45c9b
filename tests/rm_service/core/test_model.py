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
    paper = RewardModel(RewardModelConfig())
    n = count_parameters(paper)
    print(f"paper-config trainable parameters: {n:,}")
    assert 28_000_000 < n < 34_000_000
    assert len(paper.prompt_transformer.blocks) == 4 and len(paper.joint_transformer.blocks) == 1


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
        untyped = _model(type_embeddings=False)
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
