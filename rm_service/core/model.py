"""The CMI reward model: prompt transformer + joint transformer + score head (pure torch).

    [text; lyrics; ref-audio] tokens --proj+type--> prompt transformer --+
                                                                          +--> joint transformer
    evaluated-audio tokens --------------proj+type-------------------------+        |
                 (ref path) + cross-attention from evaluated audio to the reference tokens
                 pooling over evaluated-audio positions (mean, mean+max or attention) <-+
                                 -> LayerNorm -> Linear -> ReLU -> Linear(., 2) = [alignment, musicality]
    (ref path) reference vs evaluated audio similarity features -> MLP -> added to alignment (items with a ref)
    (text path) projected mean text token . projected evaluated-audio statistics -> added to alignment

Comparing reference and candidate cannot be left to one joint attention layer followed by a mean pool: the
mean of a few hundred audio tokens barely moves when some of them attend to the reference. The reference
path makes the comparison explicit: a cross-attention block lets every evaluated-audio token look up the
reference, and a handful of pooled similarities (cosines of learned projections of both clips' token
statistics, and the mean best-match similarity of candidate tokens to reference tokens) feed an alignment
term directly. Mean+max pooling lets a short defect (a dropout, a click burst) count instead of being
diluted by the mean over the whole clip.

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
POOLINGS = ("mean", "mean_max", "attention")
# Checkpoints written before these fields existed used neither; reading them must rebuild the same model.
_LEGACY_DEFAULTS = {"ref_path": False, "text_path": False, "pooling": "mean", "audio_pool": 1}
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
    ref_path: bool = True  # cross-attention to the reference + similarity features feeding alignment
    sim_dim: int = 64  # width of the learned projection the reference similarities are computed in
    pooling: str = "mean_max"  # "mean", "mean_max" (concatenated) or "attention" (learned token weights)
    text_path: bool = True  # a bilinear text-vs-audio-statistics similarity added to alignment
    audio_pool: int = 1  # average this many consecutive audio frames into one token (4: 0.16 s tokens on CPU)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.sim_dim <= 0 or self.audio_pool <= 0:
            raise ValueError("sim_dim and audio_pool must be positive")
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
        return cls(**{**_LEGACY_DEFAULTS, **data})


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


class CrossAttention(nn.Module):
    """Queries from ``x`` attend to ``context``; rows whose context is empty get an exact zero update."""

    def __init__(self, d_model: int, n_heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dim_head, self.dropout = n_heads, dim_head, dropout
        self.q = nn.Linear(d_model, n_heads * dim_head, bias=False)
        self.kv = nn.Linear(d_model, 2 * n_heads * dim_head, bias=False)
        self.out = nn.Linear(n_heads * dim_head, d_model)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        B, T, _ = x.shape
        R = context.shape[1]
        q = self.q(x).view(B, T, self.n_heads, self.dim_head).transpose(1, 2)  # (B, H, T, dh)
        k, v = self.kv(context).view(B, R, 2, self.n_heads, self.dim_head).permute(2, 0, 3, 1, 4)  # 2x(B,H,R,dh)
        present = context_mask.any(dim=1)  # (B,)
        key_mask = (context_mask | ~present[:, None])[:, None, None, :]  # (B, 1, 1, R); see Transformer
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, dh)
        y = self.out(y.transpose(1, 2).reshape(B, T, self.n_heads * self.dim_head))  # (B, T, D)
        return y * present[:, None, None].to(y.dtype)


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


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over real positions, (B, L, C) -> (B, C); rows without a real position give zeros."""
    weights = mask.to(x.dtype)[..., None]  # (B, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _masked_std(x: Tensor, mask: Tensor) -> Tensor:
    mean = _masked_mean(x, mask)  # (B, C)
    return (_masked_mean((x - mean[:, None]) ** 2, mask) + 1e-6).sqrt()  # (B, C)


N_SIM_FEATURES = 5
MATCH_SEGMENT = 8  # tokens averaged per segment for the best-match similarity


def _segment_mean(x: Tensor, mask: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Masked means of consecutive ``size``-token segments from position 0: (B, L, C) -> (B, ceil(L/size), C).

    Segments start at the first token whatever the padding, so an item's segments do not depend on its batch.
    """
    B, L, C = x.shape
    if L == 0 or size == 1:
        return x, mask
    pad = (-L) % size
    w = F.pad(mask.to(x.dtype), (0, pad)).view(B, -1, size)  # (B, S, size)
    sums = (F.pad(x, (0, 0, 0, pad)) * F.pad(mask.to(x.dtype), (0, pad))[..., None]).view(B, -1, size, C).sum(2)
    counts = w.sum(dim=2)  # (B, S)
    return sums / counts.clamp(min=1.0)[..., None], counts > 0


def similarity_features(
    ref: Tensor, ref_mask: Tensor, audio: Tensor, audio_mask: Tensor, segment: int = MATCH_SEGMENT
) -> Tensor:
    """Pooled reference-vs-candidate similarities, (B, N_SIM_FEATURES); zeros for rows without a reference.

    ``ref`` (B, R, C) and ``audio`` (B, T, C) are token sequences in one space: the cosines of their means
    and of their per-channel spreads, the distances between those (in units of the spreads), and the mean
    over candidate tokens of the best cosine match among reference tokens (a local match that does not
    care where in the track the candidate excerpt sits).
    """
    if ref.shape[1] == 0:  # no item of the batch has a reference
        return audio.new_zeros(audio.shape[0], N_SIM_FEATURES)
    ref_mean, audio_mean = _masked_mean(ref, ref_mask), _masked_mean(audio, audio_mask)  # (B, C)
    ref_std, audio_std = _masked_std(ref, ref_mask), _masked_std(audio, audio_mask)
    spread = ref_std.norm(dim=-1) + audio_std.norm(dim=-1) + 1e-6  # (B,)
    # Best matches between ~0.3 s segments keep the (T, R) similarity matrix small on two-minute clips.
    ref_seg, ref_seg_mask = _segment_mean(ref, ref_mask, segment)  # (B, R', C)
    audio_seg, audio_seg_mask = _segment_mean(audio, audio_mask, segment)  # (B, T', C)
    match = torch.einsum("btc,brc->btr", F.normalize(audio_seg, dim=-1), F.normalize(ref_seg, dim=-1))
    best = match.masked_fill(~ref_seg_mask[:, None, :], -1.0).amax(dim=2)  # (B, T')
    feats = torch.stack(
        [
            F.cosine_similarity(ref_mean, audio_mean, dim=-1),
            F.cosine_similarity(ref_std, audio_std, dim=-1),
            -(ref_mean - audio_mean).norm(dim=-1) / spread,
            -(ref_std - audio_std).norm(dim=-1) / spread,
            _masked_mean(best[..., None], audio_seg_mask)[:, 0],
        ],
        dim=1,
    )  # (B, N_SIM_FEATURES)
    return feats * ref_mask.any(dim=1, keepdim=True).to(feats.dtype)


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
        pooled_dim = 2 * D if config.pooling == "mean_max" else D
        self.pool_score = nn.Linear(D, 1) if config.pooling == "attention" else None
        self.head = nn.Sequential(
            nn.LayerNorm(pooled_dim), nn.Linear(pooled_dim, config.mlp_dim), nn.ReLU(), nn.Linear(config.mlp_dim, 2)
        )
        if config.ref_path:
            self.ref_norm = nn.LayerNorm(D)
            self.ref_attn = CrossAttention(D, config.n_heads, config.dim_head, config.dropout)
            self.sim_proj = nn.Linear(config.audio_in_dim, config.sim_dim)
            # Similarities of the raw tokens and of their learned projection, each with its own small MLP.
            self.ref_head = nn.Sequential(
                nn.Linear(2 * N_SIM_FEATURES, config.mlp_dim), nn.ReLU(), nn.Linear(config.mlp_dim, 1)
            )
        if config.text_path:
            self.text_sim = nn.Linear(config.text_in_dim, config.sim_dim)
            self.audio_sim = nn.Linear(2 * config.audio_in_dim, config.sim_dim)
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
        pool = self.config.audio_pool
        eval_audio, audio_mask = _segment_mean(inputs.audio, inputs.audio_mask, pool)  # (B, T, C), T = ceil(T0/pool)
        ref_audio, ref_mask = _segment_mean(inputs.ref_audio, inputs.ref_audio_mask, pool)  # (B, Lr, C)
        parts: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        ref_index = 0
        for kind, x, mask in (
            ("text", inputs.text, inputs.text_mask),
            ("lyrics", inputs.lyrics, inputs.lyrics_mask),
            ("ref_audio", ref_audio, ref_mask),
        ):
            ref_index = len(parts)  # ends as the position of the ref-audio part
            parts.append(self._embed(x, kind))  # (B, L, D)
            masks.append(mask)
            if kind in self.null_tokens:
                B = x.shape[0]
                parts.append(self.null_tokens[kind].expand(B, 1, -1).to(parts[-1].dtype))  # (B, 1, D)
                masks.append(~mask.any(dim=1, keepdim=True))  # the null token is real only when the modality is empty
        prompt_mask = torch.cat(masks, dim=1)  # (B, P)
        prompt = self.prompt_transformer(torch.cat(parts, dim=1), prompt_mask)  # (B, P, D)

        audio = self._embed(eval_audio, "audio")  # (B, T, D)
        joint = torch.cat([prompt.to(audio.dtype), audio], dim=1)  # (B, P + T, D)
        joint_mask = torch.cat([prompt_mask, audio_mask], dim=1)  # (B, P + T)
        hidden = self.joint_transformer(joint, joint_mask)[:, prompt.shape[1] :]  # (B, T, D)

        if self.config.ref_path:
            # The reference tokens as the prompt transformer left them (they have seen the text).
            start = sum(p.shape[1] for p in parts[:ref_index])
            ref_hidden = prompt[:, start : start + ref_audio.shape[1]]  # (B, Lr, D)
            hidden = hidden + self.ref_attn(self.ref_norm(hidden), ref_hidden.to(hidden.dtype), ref_mask)
            hidden = hidden.masked_fill(~audio_mask[..., None], 0.0)  # (B, T, D)

        scores = self.head(self._pool(hidden, audio_mask))  # (B, 2)
        if self.config.ref_path:
            segment = max(1, MATCH_SEGMENT // pool)
            raw = similarity_features(ref_audio, ref_mask, eval_audio, audio_mask, segment)
            learned = similarity_features(
                self.sim_proj(ref_audio), ref_mask, self.sim_proj(eval_audio), audio_mask, segment
            )
            has_ref = ref_mask.any(dim=1).to(scores.dtype)  # (B,)
            alignment = self.ref_head(torch.cat([raw, learned], dim=1).to(scores.dtype))[:, 0] * has_ref  # (B,)
            scores = scores + torch.stack([alignment, torch.zeros_like(alignment)], dim=1)
        if self.config.text_path:
            # Two-tower term: does the clip's overall character (token mean and spread) match the words?
            text_vec = self.text_sim(_masked_mean(inputs.text, inputs.text_mask))  # (B, S)
            stats = torch.cat([_masked_mean(eval_audio, audio_mask), _masked_std(eval_audio, audio_mask)], dim=1)
            audio_vec = self.audio_sim(stats.to(text_vec.dtype))  # (B, S)
            has_text = inputs.text_mask.any(dim=1).to(scores.dtype)  # (B,)
            match = (text_vec * audio_vec).sum(dim=1) / self.config.sim_dim**0.5 * has_text  # (B,)
            scores = scores + torch.stack([match.to(scores.dtype), torch.zeros_like(match, dtype=scores.dtype)], dim=1)
        return scores  # (B, 2)

    def _pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """(B, T, D) -> (B, D) or (B, 2D) for mean_max; padding never contributes."""
        mean = _masked_mean(hidden, mask)  # (B, D)
        if self.config.pooling == "mean":
            return mean
        if self.config.pooling == "mean_max":
            peak = hidden.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)  # (B, D)
            return torch.cat([mean, peak], dim=1)  # (B, 2D)
        assert self.pool_score is not None
        logits = self.pool_score(hidden)[..., 0].masked_fill(~mask, float("-inf"))  # (B, T)
        return (torch.softmax(logits, dim=1)[..., None] * hidden).sum(dim=1)  # (B, D)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
