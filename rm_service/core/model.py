"""The CMI reward model: prompt transformer + joint transformer + score head (pure torch).

    [text; lyrics; ref-audio] tokens --proj+type--> prompt transformer --+
                                                                          +--> joint transformer
    evaluated-audio tokens --------------proj+type-------------------------+        |
                                 masked mean over evaluated-audio positions <-------+
                                 -> LayerNorm -> Linear -> ReLU -> Linear(., 2) = [alignment, musicality]

Every attention uses a key-padding mask, so an item's scores do not depend on its batch companions or on
padding (the public reference implementation substitutes a silent reference clip for items without one
whenever another item in the batch has a reference, which breaks this). An empty modality contributes no
attended tokens ("skip"), or optionally one learned null token ("learned").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EMPTY_MODES = ("skip", "learned")
TOKEN_TYPES = ("text", "lyrics", "ref_audio", "audio")


@dataclass
class RewardModelConfig:
    d_model: int = 768  # MuQ-MuLan token width
    n_heads: int = 8
    dim_head: int = 64  # attention inner width n_heads * dim_head = 512, as in the public CMI-RM
    prompt_depth: int = 4  # paper: 4 (the public code defaults to 1)
    joint_depth: int = 1  # paper: 1 (the public code defaults to 4)
    ff_mult: int = 4  # GEGLU feed-forward; hidden = ff_mult * d_model * 2/3 keeps a 4x MLP's parameter count
    mlp_dim: int = 512  # score head hidden width
    dropout: float = 0.0  # attention-probability and feed-forward dropout
    audio_in_dim: int = 768  # encoder audio token width; a trainable Linear projects it when != d_model
    text_in_dim: int = 768  # encoder text token width; likewise
    type_embeddings: bool = True  # learned embedding per token type: text, lyrics, ref audio, eval audio
    empty_text: str = "skip"  # "skip": an empty modality adds no attended token; "learned": one null token
    empty_lyrics: str = "skip"
    empty_ref_audio: str = "skip"

    def __post_init__(self) -> None:
        for name in ("empty_text", "empty_lyrics", "empty_ref_audio"):
            if getattr(self, name) not in EMPTY_MODES:
                raise ValueError(f"{name} must be one of {EMPTY_MODES}, got {getattr(self, name)!r}")
        if self.d_model <= 0 or self.n_heads <= 0 or self.dim_head <= 0:
            raise ValueError("d_model, n_heads and dim_head must be positive")
        if self.prompt_depth < 0 or self.joint_depth < 1:
            raise ValueError("prompt_depth must be >= 0 and joint_depth >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown RewardModelConfig fields: {sorted(unknown)}")
        return cls(**data)


@dataclass
class RewardInputs:
    """A padded batch of token sequences; masks are True at real tokens.

    A row whose text/lyrics/ref-audio mask is all False has that modality empty. Every row must have at
    least one evaluated-audio token.
    """

    text: Tensor  # (B, Lt, text_in_dim)
    text_mask: Tensor  # (B, Lt) bool
    lyrics: Tensor  # (B, Ll, text_in_dim)
    lyrics_mask: Tensor  # (B, Ll) bool
    ref_audio: Tensor  # (B, Lr, audio_in_dim)
    ref_audio_mask: Tensor  # (B, Lr) bool
    audio: Tensor  # (B, T, audio_in_dim)
    audio_mask: Tensor  # (B, T) bool

    def to(self, device: torch.device | str, non_blocking: bool = False) -> RewardInputs:
        return RewardInputs(
            **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)}
        )

    @property
    def batch_size(self) -> int:
        return int(self.audio.shape[0])


def pad_tokens(seqs: list[Tensor], dim: int) -> tuple[Tensor, Tensor]:
    """Right-pad [(L_i, dim)] to (B, max L_i, dim) with a (B, max L_i) validity mask; L_i may be 0."""
    longest = max((s.shape[0] for s in seqs), default=0)
    out = torch.zeros(len(seqs), longest, dim)
    mask = torch.zeros(len(seqs), longest, dtype=torch.bool)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return out, mask


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dim_head, self.dropout = n_heads, dim_head, dropout
        self.qkv = nn.Linear(d_model, 3 * n_heads * dim_head, bias=False)
        self.out = nn.Linear(n_heads * dim_head, d_model)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        B, S, _ = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.n_heads, self.dim_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, S, dh)
        attn_mask = key_mask[:, None, None, :]  # (B, 1, 1, S), True = may attend
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, S, dh)
        return self.out(y.transpose(1, 2).reshape(B, S, self.n_heads * self.dim_head))  # (B, S, D)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__()
        hidden = int(d_model * mult * 2 / 3)
        self.proj_in = nn.Linear(d_model, 2 * hidden)
        self.drop = nn.Dropout(dropout)
        self.proj_out = nn.Linear(hidden, d_model)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj_in(x).chunk(2, dim=-1)  # 2 x (B, S, hidden)
        return self.proj_out(self.drop(value * F.gelu(gate)))  # (B, S, D)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.dim_head, cfg.dropout)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm_attn(x), key_mask)  # (B, S, D)
        return x + self.ff(self.norm_ff(x))  # (B, S, D)


class Transformer(nn.Module):
    def __init__(self, cfg: RewardModelConfig, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(depth))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # A row with no real token (e.g. an instruction with every prompt modality empty) would give an
        # all-masked softmax (NaN, and NaN gradients). Let such rows attend to their own padding instead:
        # the values are finite and are zeroed below and masked out of every later attention and pooling.
        key_mask = mask | ~mask.any(dim=1, keepdim=True)  # (B, S)
        for block in self.blocks:
            x = block(x, key_mask)
        return x.masked_fill(~mask[..., None], 0.0)  # (B, S, D)


class RewardModel(nn.Module):
    """CMI reward model; ``forward(inputs) -> (B, 2)`` scores, column 0 alignment, column 1 musicality."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.config = config
        D = config.d_model
        self.text_proj: nn.Module = nn.Linear(config.text_in_dim, D) if config.text_in_dim != D else nn.Identity()
        self.audio_proj: nn.Module = nn.Linear(config.audio_in_dim, D) if config.audio_in_dim != D else nn.Identity()
        self.type_embedding = nn.Embedding(len(TOKEN_TYPES), D) if config.type_embeddings else None
        self.null_tokens = nn.ParameterDict(
            {
                name: nn.Parameter(torch.randn(1, 1, D) * 0.02)
                for name, mode in (
                    ("text", config.empty_text),
                    ("lyrics", config.empty_lyrics),
                    ("ref_audio", config.empty_ref_audio),
                )
                if mode == "learned"
            }
        )
        self.prompt_transformer = Transformer(config, config.prompt_depth)
        self.joint_transformer = Transformer(config, config.joint_depth)
        self.head = nn.Sequential(
            nn.LayerNorm(D), nn.Linear(D, config.mlp_dim), nn.ReLU(), nn.Linear(config.mlp_dim, 2)
        )
        if self.type_embedding is not None:
            nn.init.normal_(self.type_embedding.weight, std=0.02)

    def _embed(self, x: Tensor, kind: str) -> Tensor:
        proj = self.audio_proj if kind in ("ref_audio", "audio") else self.text_proj
        x = proj(x)  # (B, L, D)
        if self.type_embedding is not None:
            x = x + self.type_embedding.weight[TOKEN_TYPES.index(kind)]
        return x

    def forward(self, inputs: RewardInputs) -> Tensor:
        if not bool(inputs.audio_mask.any(dim=1).all()):
            raise ValueError("every item needs at least one evaluated-audio token")
        parts, masks = [], []
        for kind, x, mask in (
            ("text", inputs.text, inputs.text_mask),
            ("lyrics", inputs.lyrics, inputs.lyrics_mask),
            ("ref_audio", inputs.ref_audio, inputs.ref_audio_mask),
        ):
            parts.append(self._embed(x, kind))  # (B, L, D)
            masks.append(mask)
            if kind in self.null_tokens:
                B = x.shape[0]
                parts.append(self.null_tokens[kind].expand(B, 1, -1).to(parts[-1].dtype))  # (B, 1, D)
                masks.append(~mask.any(dim=1, keepdim=True))  # the null token is real only when the modality is empty
        prompt_mask = torch.cat(masks, dim=1)  # (B, P)
        prompt = self.prompt_transformer(torch.cat(parts, dim=1), prompt_mask)  # (B, P, D)

        audio = self._embed(inputs.audio, "audio")  # (B, T, D)
        joint = torch.cat([prompt.to(audio.dtype), audio], dim=1)  # (B, P + T, D)
        joint_mask = torch.cat([prompt_mask, inputs.audio_mask], dim=1)  # (B, P + T)
        hidden = self.joint_transformer(joint, joint_mask)[:, prompt.shape[1] :]  # (B, T, D)

        weights = inputs.audio_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D)
        return self.head(pooled)  # (B, 2)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
