"""Synthetic music: the renderer (``music``) and the reward-modelling dataset built from it (``dataset``)."""

from .dataset import SyntheticSummary, make_synthetic_dataset
from .music import INSTRUMENTS, MusicSpec, describe, render, write_wav

__all__ = ["INSTRUMENTS", "MusicSpec", "SyntheticSummary", "describe", "make_synthetic_dataset", "render", "write_wav"]
