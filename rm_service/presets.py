"""Training presets and encoders a training run may name (torch-free: the web process validates with them)."""

from __future__ import annotations

from typing import Any

ENCODERS = ("builtin", "muq")

# "paper" is the core's defaults (d_model 768, ~30M parameters); "tiny" trains in seconds on CPU and is what
# the tests and the demo use; "small" sits between.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "model": {"d_model": 64, "n_heads": 2, "dim_head": 32, "prompt_depth": 1, "joint_depth": 1, "mlp_dim": 64},
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 5,
        "stage1_steps": 20,
        "stage2_max_steps": 60,
        "eval_every": 10,
        "patience": 5,
        "checkpoint_every": 10,
    },
    "small": {
        "model": {"d_model": 256, "n_heads": 4, "dim_head": 64, "prompt_depth": 2, "joint_depth": 1, "mlp_dim": 256},
        "batch_size": 16,
        "lr": 3e-4,
        "warmup_steps": 20,
        "stage1_steps": 200,
        "stage2_max_steps": 400,
        "eval_every": 25,
        "checkpoint_every": 25,
    },
    "paper": {},
}
