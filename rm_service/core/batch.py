"""Model inputs for training and scoring: the one place where an instruction and a clip become tokens.

Training and scoring must feed the model identically, or the model is scored on inputs it never saw in
training. Both paths therefore go through ``BatchBuilder``: the instruction becomes a ``Prompt`` (text,
lyrics and reference-clip tokens), the evaluated clip becomes one token array per window of the long-audio
strategy, and ``inputs`` pads them into a ``RewardInputs`` batch.

The reference clip is cut to the window length of the strategy: ``first120`` keeps its first 120 s,
``first10``, ``mean10`` and ``whole10`` (whose windows are 10 s) its first 10 s; ``max_dur`` caps both clips.
Training may crop every clip at random (``training_inputs(..., rng=, crop_min=)``): augmentation only,
scoring never crops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import check_strategy
from .data import Dataset, Instruction
from .features import AudioSource, Featurizer
from .model import RewardInputs, pad_tokens

ScoreInput = Mapping[str, Any] | Any  # a dict, or any object with audio / text / lyrics / ref_audio attributes

# The window a reference clip gets: the length of one evaluated-audio window of the strategy.
REFERENCE_WINDOW = {"first120": "first120", "first10": "first10", "mean10": "first10", "whole10": "first10"}


@dataclass(frozen=True)
class Prompt:
    """Token arrays of one instruction; an absent modality is a (0, dim) array."""

    text: np.ndarray  # (Lt, text_dim)
    lyrics: np.ndarray  # (Ll, text_dim)
    ref_audio: np.ndarray  # (Lr, audio_dim)


def field_of(item: ScoreInput, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def as_source(value: Any) -> AudioSource | None:
    """A path or waveform; None for a missing or empty value. Tensors become float32 numpy arrays."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy()
    if isinstance(value, str | Path | np.ndarray):
        return value
    raise TypeError(f"audio must be a path, a numpy array or a torch tensor, got {type(value).__name__}")


def random_crop(tokens: np.ndarray, rng: np.random.Generator, crop_min: float) -> np.ndarray:
    """A contiguous run of between ``crop_min`` x and all of ``tokens``' rows, at a random offset."""
    if len(tokens) <= 1:
        return tokens
    keep = int(rng.integers(max(1, int(crop_min * len(tokens))), len(tokens) + 1))
    start = int(rng.integers(0, len(tokens) - keep + 1))
    return np.ascontiguousarray(tokens[start : start + keep])


class BatchBuilder:
    """Turns instructions and clips into model inputs for one long-audio strategy.

    Args:
        featurizer: encoder plus embedding cache.
        strategy: "first120", "first10" or "mean10" (training allows only the single-window ones).
        max_dur: cap on the seconds of each clip used (None = the strategy's limit).
        sr: sample rate of waveform (array) inputs (default: the encoder's).
    """

    def __init__(
        self, featurizer: Featurizer, *, strategy: str, max_dur: float | None = None, sr: int | None = None
    ) -> None:
        check_strategy(strategy)
        self.featurizer = featurizer
        self.strategy = strategy
        self.max_dur = max_dur
        self.sr = sr

    def prompt(self, *, text: str | None, lyrics: str | None, ref_audio: AudioSource | None) -> Prompt:
        encoder = self.featurizer.encoder
        ref = (
            np.zeros((0, encoder.audio_dim), dtype=np.float32)
            if ref_audio is None
            else self.featurizer.audio(
                ref_audio, strategy=REFERENCE_WINDOW[self.strategy], max_dur=self.max_dur, sr=self.sr
            )[0]
        )
        return Prompt(self.featurizer.text(text or ""), self.featurizer.text(lyrics or ""), ref)

    def windows(self, audio: AudioSource) -> list[np.ndarray]:
        """Token arrays of the windows of ``audio`` that the strategy scores (one for first120/first10)."""
        return self.featurizer.audio(audio, strategy=self.strategy, max_dur=self.max_dur, sr=self.sr)

    def inputs(self, prompts: Sequence[Prompt], audio: Sequence[np.ndarray]) -> RewardInputs:
        """Pad row-aligned prompts and evaluated-audio windows into one batch."""
        encoder = self.featurizer.encoder

        def pad(arrays: Iterable[np.ndarray], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
            return pad_tokens([torch.from_numpy(a) for a in arrays], dim)

        text, text_mask = pad((p.text for p in prompts), encoder.text_dim)
        lyrics, lyrics_mask = pad((p.lyrics for p in prompts), encoder.text_dim)
        ref, ref_mask = pad((p.ref_audio for p in prompts), encoder.audio_dim)
        clips, clips_mask = pad(audio, encoder.audio_dim)
        return RewardInputs(text, text_mask, lyrics, lyrics_mask, ref, ref_mask, clips, clips_mask)

    # --- training: (Instruction, clip path) items, one window per clip

    def instruction_prompt(self, instruction: Instruction) -> Prompt:
        return self.prompt(text=instruction.text, lyrics=instruction.lyrics, ref_audio=instruction.ref_audio)

    def training_inputs(
        self,
        items: Sequence[tuple[Instruction, Path]],
        *,
        rng: np.random.Generator | None = None,
        crop_min: float = 1.0,
    ) -> RewardInputs:
        """The batch of (instruction, clip) rows as training sees it.

        With ``rng``, every evaluated and reference clip is cut to a random contiguous crop keeping between
        ``crop_min`` and all of its tokens, at a random offset (crop and time-shift augmentation).
        """
        if self.strategy in ("mean10", "whole10"):
            raise ValueError("training uses one window per clip: strategy must be first120 or first10")
        prompts = [self.instruction_prompt(i) for i, _ in items]
        clips = [self.windows(a)[0] for _, a in items]
        if rng is not None and crop_min < 1.0:
            prompts = [Prompt(p.text, p.lyrics, random_crop(p.ref_audio, rng, crop_min)) for p in prompts]
            clips = [random_crop(c, rng, crop_min) for c in clips]
        return self.inputs(prompts, clips)

    def prepare(self, datasets: Iterable[Dataset], *, show_progress: bool = False) -> None:
        """Encode (or find in the cache) every clip and text of ``datasets`` once, up front."""
        from tqdm import tqdm

        instructions: dict[Instruction, None] = {}
        clips: dict[Path, None] = {}
        for ds in datasets:
            instructions.update(dict.fromkeys(ds.instructions()))
            clips.update(dict.fromkeys(ds.audio_paths()))
        for instruction in tqdm(instructions, desc="encode prompts", disable=not show_progress, leave=False):
            self.instruction_prompt(instruction)
        for path in tqdm(clips, desc="encode audio", disable=not show_progress, leave=False):
            self.windows(path)

    # --- scoring: items with audio / text / lyrics / ref_audio

    def item_prompt(self, item: ScoreInput) -> Prompt:
        return self.prompt(
            text=field_of(item, "text"),
            lyrics=field_of(item, "lyrics"),
            ref_audio=as_source(field_of(item, "ref_audio")),
        )

    def item_windows(self, item: ScoreInput, index: int) -> list[np.ndarray]:
        audio = as_source(field_of(item, "audio"))
        if audio is None:
            raise ValueError(f"item {index} has no audio")
        return self.windows(audio)
