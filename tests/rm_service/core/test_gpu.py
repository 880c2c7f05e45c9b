"""bf16 scoring on CUDA (skipped without a GPU)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from rm_service.core.encoders.builtin import AUDIO_DIM, BuiltinEncoder
from rm_service.core.model import RewardModel, RewardModelConfig
from rm_service.core.score import Scorer
from rm_service.core.synth import MusicSpec, render


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_it_scores_in_bf16_on_cuda_close_to_fp32_on_cpu(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RewardModel(RewardModelConfig(audio_in_dim=AUDIO_DIM, text_in_dim=384))  # the paper's size
    encoder = BuiltinEncoder(text_model="hash")
    items = [
        {
            "audio": render(MusicSpec(tempo_bpm=70 + 20 * i, vocal=i % 2 == 0), duration_s=30.0, seed=i),
            "text": "a calm piano piece",
            "lyrics": "la la" if i % 2 else "",
            "ref_audio": render(MusicSpec(), duration_s=10.0, seed=9) if i % 3 == 0 else None,
        }
        for i in range(6)
    ]
    cpu = Scorer(model, encoder, device="cpu").score_batch(items, batch_size=3)
    gpu_scorer = Scorer(model, encoder, device="cuda")
    gpu = gpu_scorer.score_batch(items, batch_size=3)
    assert next(gpu_scorer.model.parameters()).is_cuda
    assert gpu.dtype == np.float32 and gpu.shape == (6, 2)
    np.testing.assert_allclose(gpu, cpu, atol=0.05 * float(np.abs(cpu).max()) + 1e-3)  # bf16 rounding only
    np.testing.assert_allclose(gpu_scorer.score_batch(items, batch_size=1), gpu, atol=2e-2)
