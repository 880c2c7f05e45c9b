"""Stage-1 pseudo-labels constructed offline from unlabelled music.

The paper pretrains on pairs an LLM judge labelled; here the labels hold by construction, so no judge is
needed and any folder of music (a user's catalogue, a packaged corpus, the platform's own clips) will do:

- **reference alignment** (modality A): a reference excerpt of track X; candidate excerpts from X (another
  position and length) and from another track Y. The candidate from X is preferred.
- **musicality** (modality T or A): one excerpt, rendered twice with a realistic defect of the same kind at
  two severities (0 = clean); the milder one is preferred. Defects cover generation and production faults:
  dropouts, clipping, noise, bit reduction, band limiting, stutter/loop glitches, wow and flutter, comb
  filtering, spectral "musical noise", and wrong-sounding pitch shifts of a part of the excerpt.
- **text alignment** (modality T): a description derived from the audio itself (bright/dark, busy/calm,
  low/high register, from DSP statistics ranked over the corpus); an excerpt matching it is preferred over
  an excerpt whose statistics sit at the other end of one named attribute.

Every written clip is levelled (gated RMS) to a random level shared by the two candidates of a pair,
then put through one of several formats (lossless, Ogg Vorbis, MP3, band-limited resampling) drawn
independently of its label, so neither loudness nor format is ever the cue. Each pair row carries only the
label of the head it teaches (the other head is unlabelled, not a tie).

Tracks are split by a hash of their file name: ``track_split`` keeps a fixed quarter ("eval") out of every
pretraining run so a held-out real-music evaluation can be built from the same corpus.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SR = 24000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
ARCHIVE_EXTENSIONS = (".pk3", ".zip")
# Debian music packages kept for acceptance tests: never read for training or tuning.
RESERVED_NAMES = ("wesnoth", "ufoai", "warzone2100", "singularity")
EVAL_FRACTION = 0.25
GENERIC_REF_PROMPT = "Music in the style of the reference clip."


class ReservedCorpusError(ValueError):
    """A path names a corpus reserved for acceptance tests."""


@dataclass(frozen=True)
class Track:
    id: str  # stable name: file name, or "archive.pk3:member"
    path: Path
    member: str | None = None  # file inside a zip/pk3 archive


def _check_not_reserved(path: Path) -> None:
    lowered = str(path).lower()
    for name in RESERVED_NAMES:
        if name in lowered:
            raise ReservedCorpusError(f"{path} belongs to a corpus reserved for acceptance tests ({name})")


def find_tracks(audio_dirs: Iterable[str | Path]) -> list[Track]:
    """Audio files (and audio members of .zip/.pk3 archives) under ``audio_dirs``, sorted by id.

    Raises:
        ReservedCorpusError: a directory or file belongs to a reserved acceptance-test corpus.
        FileNotFoundError: a directory does not exist.
    """
    tracks: dict[str, Track] = {}
    for root in map(Path, audio_dirs):
        _check_not_reserved(root)
        if not root.exists():
            raise FileNotFoundError(f"audio directory not found: {root}")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            _check_not_reserved(path)
            suffix = path.suffix.lower()
            if suffix in AUDIO_EXTENSIONS:
                tracks.setdefault(path.name, Track(path.name, path))
            elif suffix in ARCHIVE_EXTENSIONS:
                with zipfile.ZipFile(path) as archive:
                    for member in archive.namelist():
                        if member.lower().endswith(AUDIO_EXTENSIONS):
                            track_id = f"{path.name}:{member}"
                            tracks.setdefault(track_id, Track(track_id, path, member))
    return [tracks[k] for k in sorted(tracks)]


def track_split(track_id: str, eval_fraction: float = EVAL_FRACTION) -> str:
    """ "eval" for a fixed, hash-chosen share of tracks (kept out of pretraining), else "train"."""
    bucket = int.from_bytes(hashlib.sha256(f"rm-track-split:{track_id}".encode()).digest()[:4], "little")
    return "eval" if bucket / 2**32 < eval_fraction else "train"


def load_track(track: Track, *, sr: int = SR, max_seconds: float | None = 180.0) -> np.ndarray:
    """Mono float32 at ``sr``, at most ``max_seconds`` from the start."""
    import soundfile
    import soxr

    source: Any = str(track.path)
    if track.member is not None:
        with zipfile.ZipFile(track.path) as archive:
            source = io.BytesIO(archive.read(track.member))
    with soundfile.SoundFile(source) as f:
        frames = -1 if max_seconds is None else int(max_seconds * f.samplerate)
        data = f.read(frames=frames, dtype="float32", always_2d=True)
        file_sr = f.samplerate
    mono = data.mean(axis=1)
    if file_sr != sr and len(mono):
        mono = soxr.resample(mono, file_sr, sr)
    return np.ascontiguousarray(mono, dtype=np.float32)


# --------------------------------------------------------------------------------------------- level


def gated_rms_db(wav: np.ndarray) -> float:
    """Gated RMS in dBFS (the builtin encoder's level meter); -inf for digital silence."""
    from .encoders.builtin import TARGET_DBFS, level_gain

    gain = level_gain(wav)
    if gain == 1.0 and not np.any(np.abs(wav) > 1e-4):
        return float("-inf")
    return TARGET_DBFS - 20.0 * float(np.log10(gain))


def levelled(wav: np.ndarray, dbfs: float) -> np.ndarray:
    """``wav`` scaled so its gated RMS is ``dbfs``."""
    from .encoders.builtin import TARGET_DBFS, level_gain

    return (wav * level_gain(wav) * 10.0 ** ((dbfs - TARGET_DBFS) / 20.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------- defects
# Each defect maps (wav, severity in (0, 1], rng) -> wav of the same length; severity 1 is plainly broken,
# about 0.3 is audible to a careful listener.


def _dropout(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    out = wav.copy()
    for _ in range(1 + int(rng.integers(0, 1 + int(3 * s)))):
        length = int(SR * rng.uniform(0.04, 0.06 + 0.35 * s))
        start = int(rng.integers(0, max(1, len(out) - length)))
        out[start : start + length] *= 0.0 if rng.random() < 0.7 else 0.1
    return out


def _clipping(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    peak = float(np.abs(wav).max()) or 1.0
    threshold = peak * (1.0 - 0.93 * s)
    return np.clip(wav, -threshold, threshold) if rng.random() < 0.5 else np.tanh(wav / threshold) * threshold


def _noise(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(len(wav)).astype(np.float32)
    if rng.random() < 0.5:  # pink-ish: integrate white noise a little
        noise = np.convolve(noise, np.ones(8) / 8, mode="same")  # type: ignore[assignment]
    snr_db = 35.0 - 30.0 * s
    signal = float(np.sqrt(np.mean(wav**2))) + 1e-9
    return wav + noise / (float(np.sqrt(np.mean(noise**2))) + 1e-9) * signal * 10 ** (-snr_db / 20)


def _bitcrush(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    peak = float(np.abs(wav).max()) or 1.0
    levels = 2 ** (10 - 7 * s)
    crushed = np.round(wav / peak * levels) / levels * peak
    hold = int(1 + 5 * s * rng.random())  # sample-and-hold aliasing
    return np.repeat(crushed[::hold], hold)[: len(wav)]


def _bandlimit(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    import soxr

    low_sr = int(16000 - 13000 * s)
    return _fit(soxr.resample(soxr.resample(wav, SR, low_sr), low_sr, SR), len(wav))


def _stutter(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    out = wav.copy()
    for _ in range(1 + int(2 * s)):
        seg = int(SR * rng.uniform(0.06, 0.25))
        repeats = 2 + int(rng.integers(0, 1 + int(4 * s)))
        start = int(rng.integers(0, max(1, len(out) - seg * repeats)))
        loop = np.tile(out[start : start + seg], repeats)
        out[start : start + len(loop)] = loop[: len(out) - start]
    return out


def _wow(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(len(wav)) / SR
    depth = 0.002 + 0.02 * s  # relative speed deviation
    rate = rng.uniform(0.5, 6.0)
    offset = np.cumsum(1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))
    offset = offset - offset[0]
    return np.interp(np.clip(offset, 0, len(wav) - 1), np.arange(len(wav)), wav).astype(np.float32)


def _comb(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    delay = int(SR * rng.uniform(0.0005, 0.006))
    gain = 0.3 + 0.65 * s
    out = wav.copy()
    out[delay:] += gain * wav[:-delay]
    return out


def _musical_noise(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    n_fft, hop = 1024, 256
    pad = np.pad(wav, (n_fft, n_fft))
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::hop] * np.hanning(n_fft)
    spec = np.fft.rfft(frames, axis=1)
    keep = rng.random(spec.shape) > 0.15 + 0.6 * s  # random time-frequency holes, as over-eager denoisers
    out_frames = np.fft.irfft(spec * keep, n=n_fft, axis=1) * np.hanning(n_fft)
    out = np.zeros(len(pad))
    norm = np.zeros(len(pad))
    for i, frame in enumerate(out_frames):
        out[i * hop : i * hop + n_fft] += frame
        norm[i * hop : i * hop + n_fft] += np.hanning(n_fft) ** 2
    return (out / np.maximum(norm, 1e-3))[n_fft : n_fft + len(wav)].astype(np.float32)


def _detune_part(wav: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    # A stretch of the excerpt shifted off-key (resampled), mixed with the rest: sour notes.
    import soxr

    cents = (20 + 80 * s) * (1 if rng.random() < 0.5 else -1)
    ratio = 2 ** (cents / 1200)
    shifted = _fit(soxr.resample(wav, SR, int(SR / ratio)), len(wav))
    mix = 0.5 + 0.5 * s
    return (1 - mix) * wav + mix * shifted if rng.random() < 0.5 else 0.5 * wav + 0.5 * shifted


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


DEFECTS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "dropout": _dropout,
    "clipping": _clipping,
    "noise": _noise,
    "bitcrush": _bitcrush,
    "bandlimit": _bandlimit,
    "stutter": _stutter,
    "wow": _wow,
    "comb": _comb,
    "musical_noise": _musical_noise,
    "detune": _detune_part,
}
SEVERITIES = (0.0, 0.35, 0.65, 1.0)


def apply_defect(wav: np.ndarray, kind: str, severity: float, rng: np.random.Generator) -> np.ndarray:
    """``wav`` with defect ``kind`` at ``severity`` (0 = unchanged)."""
    if severity <= 0:
        return wav.copy()
    return np.asarray(DEFECTS[kind](wav.astype(np.float32), float(severity), rng), dtype=np.float32)


# ------------------------------------------------------------------------------------------- formats

FORMATS = ("wav", "flac", "ogg", "mp3", "resample22k")


def through_format(wav: np.ndarray, fmt: str, rng: np.random.Generator) -> np.ndarray:
    """``wav`` after a round trip through a delivery format (label-independent augmentation)."""
    import soundfile
    import soxr

    if fmt in ("wav", "flac"):
        return wav
    if fmt == "resample22k":
        return _fit(soxr.resample(soxr.resample(wav, SR, 22050), 22050, SR), len(wav))
    buffer = io.BytesIO()
    kind = {"ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}[fmt]
    soundfile.write(buffer, np.clip(wav, -1, 1), SR, format=kind[0], subtype=kind[1])
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32", always_2d=True)
    return _fit(decoded.mean(axis=1), len(wav))


# ------------------------------------------------------------------------------------ construction


@dataclass
class PretrainSpec:
    n_alignment: int = 400  # reference-alignment pairs
    n_musicality: int = 400  # graded-defect pairs
    n_text: int = 200  # description pairs
    excerpt_s: tuple[float, float] = (4.0, 8.0)  # candidate excerpt length range
    ref_s: tuple[float, float] = (5.0, 10.0)  # reference excerpt length range
    max_track_s: float = 180.0  # seconds read from the start of each track
    level_dbfs: tuple[float, float] = (-30.0, -14.0)  # random shared level of a pair's candidates
    musicality_with_ref: float = 0.3  # share of musicality pairs that also carry a reference
    validation_fraction: float = 0.1  # of the pretraining tracks, held out for stage-1 validation
    clean_vs_degraded: bool = False  # musicality pairs always put a clean excerpt against a defective one
    seed: int = 0
    defects: tuple[str, ...] = tuple(DEFECTS)
    formats: tuple[str, ...] = FORMATS


@dataclass
class PretrainSummary:
    out_dir: Path
    tracks: dict[str, int]  # split -> tracks used
    rows: dict[str, dict[str, int]]  # split -> kind -> rows
    clips: int
    track_ids: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_dir": str(self.out_dir)}


def _excerpt(
    wav: np.ndarray, seconds: float, rng: np.random.Generator, avoid: tuple[int, int] | None = None
) -> tuple[np.ndarray, int]:
    n = min(len(wav), int(seconds * SR))
    starts = np.arange(0, max(1, len(wav) - n + 1), SR // 4)
    if avoid is not None and len(starts) > 1:
        far = starts[(starts + n <= avoid[0]) | (starts >= avoid[1])]
        starts = far if len(far) else starts
    start = int(rng.choice(starts))
    return wav[start : start + n], start


def _descriptors(wav: np.ndarray) -> np.ndarray:
    """(brightness, activity, register) statistics of an excerpt, from the builtin encoder's features."""
    from .encoders.builtin import N_MELS, audio_features

    feats = audio_features(wav)
    centroid = float(np.median(feats[:, N_MELS + 12]))  # scaled spectral centroid
    onset = float(np.mean(feats[:, N_MELS + 16]))  # onset strength
    mel = feats[:, :N_MELS]
    weights = np.exp(mel * 2.0)  # back towards mel power
    register = float(np.median((weights[:, : N_MELS // 2].sum(1)) / (weights.sum(1) + 1e-9)))  # low-band share
    return np.array([centroid, onset, -register])


_DESCRIPTOR_WORDS = (("dark", "bright"), ("calm", "busy"), ("low", "high"))


def _describe(bins: np.ndarray) -> str:
    words = [_DESCRIPTOR_WORDS[i][int(b)] for i, b in enumerate(bins) if b >= 0]
    return f"A {', '.join(words)} piece of music." if words else "A piece of music."


def build_pretrain_pairs(
    audio_dirs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    spec: PretrainSpec | None = None,
    extra_tracks: dict[str, np.ndarray] | None = None,
    use_split: str = "train",
    show_progress: bool = False,
) -> PretrainSummary:
    """Cut labelled pairs from unlabelled music and write ``train.jsonl``, ``validation.jsonl``, ``audio/``.

    Args:
        audio_dirs: folders (or files, or .zip/.pk3 archives) of music.
        out_dir: output directory (created).
        spec: how many pairs of each kind, excerpt lengths, levels, formats; see ``PretrainSpec``.
        extra_tracks: more tracks as {id: mono float32 waveform at 24 kHz} (e.g. synthesised music).
        use_split: which ``track_split`` side of the folder tracks to use ("train"; "eval" for building a
            held-out evaluation; "all" for a user's own catalogue).
        show_progress: draw a tqdm bar.

    Raises:
        ValueError: fewer than two usable tracks.
    """
    from tqdm import tqdm

    spec = spec or PretrainSpec()
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    chosen = [t for t in find_tracks(audio_dirs) if use_split == "all" or track_split(t.id) == use_split]
    waves: dict[str, np.ndarray] = {}
    for track in tqdm(chosen, desc="read tracks", disable=not show_progress, leave=False):
        try:
            wav = load_track(track, max_seconds=spec.max_track_s)
        except Exception as exc:  # an unreadable file is skipped, not fatal: corpora contain odd files
            logger.warning("skipping %s: %s", track.id, exc)
            continue
        if len(wav) >= 3 * SR and np.isfinite(gated_rms_db(wav)):
            waves[track.id] = wav
    for track_id, wav in (extra_tracks or {}).items():
        waves[track_id] = np.asarray(wav, dtype=np.float32)
    if len(waves) < 2:
        raise ValueError(f"need at least two usable tracks of 3 s or more, found {len(waves)}")
    ids = sorted(waves)
    order = rng.permutation(len(ids))
    n_val = max(1, int(round(spec.validation_fraction * len(ids)))) if len(ids) >= 6 and spec.validation_fraction else 0
    split_of = {ids[i]: ("validation" if k < n_val else "train") for k, i in enumerate(order)}
    by_split = {s: [t for t in ids if split_of[t] == s] for s in ("train", "validation")}

    clips = 0

    def write(name: str, wav: np.ndarray) -> str:
        nonlocal clips
        import soundfile

        fmt = str(rng.choice(spec.formats))
        wav = through_format(wav, fmt, rng)
        peak = float(np.abs(wav).max())
        if peak > 0.999:  # a uniform scale keeps the clip intact; the encoder levels it anyway
            wav = wav * (0.999 / peak)
        soundfile.write(out / "audio" / f"{name}.flac", wav, SR, subtype="PCM_16")
        clips += 1
        return f"audio/{name}.flac"

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    counts: dict[str, dict[str, int]] = {s: {"alignment": 0, "musicality": 0, "text": 0} for s in rows}
    descriptor_cache: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    total = spec.n_alignment + spec.n_musicality + spec.n_text
    bar = tqdm(total=total, desc="construct pairs", disable=not show_progress, leave=False)

    def pick_split(k: int) -> str:
        return "validation" if by_split["validation"] and k % 10 == 9 else "train"

    for k in range(spec.n_alignment):
        split = pick_split(k)
        pool = by_split[split] if len(by_split[split]) >= 2 else ids
        x, y = rng.choice(len(pool), size=2, replace=False)
        same, other = waves[pool[int(x)]], waves[pool[int(y)]]
        ref, ref_start = _excerpt(same, rng.uniform(*spec.ref_s), rng)
        pos, _ = _excerpt(same, rng.uniform(*spec.excerpt_s), rng, avoid=(ref_start, ref_start + len(ref)))
        neg, _ = _excerpt(other, rng.uniform(*spec.excerpt_s), rng)
        level = rng.uniform(*spec.level_dbfs)
        a_first = bool(rng.random() < 0.5)
        name = f"{split[0]}al{k:05d}"
        pair = [levelled(pos, level), levelled(neg, level)]
        if not a_first:
            pair.reverse()
        rows[split].append(
            {
                "prompt": GENERIC_REF_PROMPT if rng.random() < 0.5 else "",
                "lyrics": "",
                "ref-audio-path": write(f"{name}_ref", levelled(ref, rng.uniform(*spec.level_dbfs))),
                "audio-path": write(f"{name}_a", pair[0]),
                "audio2": write(f"{name}_b", pair[1]),
                "preference-alignment": "model_a" if a_first else "model_b",
                "prompt id": name,
                "source": "pretrain-alignment",
                "modality": "A",
                "split": split,
                "pretrain": {"kind": "alignment", "same": pool[int(x)], "other": pool[int(y)]},
            }
        )
        counts[split]["alignment"] += 1
        bar.update(1)

    for k in range(spec.n_musicality):
        split = pick_split(k)
        pool = by_split[split] or ids
        track = pool[int(rng.integers(len(pool)))]
        excerpt, start = _excerpt(waves[track], rng.uniform(*spec.excerpt_s), rng)
        kind = str(rng.choice(spec.defects))
        worse, better = sorted(rng.choice(len(SEVERITIES), size=2, replace=False))[::-1]
        if spec.clean_vs_degraded:
            better = 0
        level = rng.uniform(*spec.level_dbfs)
        clean_side = levelled(apply_defect(excerpt, kind, SEVERITIES[better], rng), level)
        bad_side = levelled(apply_defect(excerpt, kind, SEVERITIES[worse], rng), level)
        a_first = bool(rng.random() < 0.5)
        name = f"{split[0]}mu{k:05d}"
        with_ref = rng.random() < spec.musicality_with_ref
        ref_path = ""
        if with_ref:
            ref, _ = _excerpt(waves[track], rng.uniform(*spec.ref_s), rng, avoid=(start, start + len(excerpt)))
            ref_path = write(f"{name}_ref", levelled(ref, rng.uniform(*spec.level_dbfs)))
        pair = [clean_side, bad_side] if a_first else [bad_side, clean_side]
        rows[split].append(
            {
                "prompt": "",
                "lyrics": "",
                "ref-audio-path": ref_path,
                "audio-path": write(f"{name}_a", pair[0]),
                "audio2": write(f"{name}_b", pair[1]),
                "preference-musicality": "model_a" if a_first else "model_b",
                "prompt id": name,
                "source": "pretrain-musicality",
                "modality": "A" if with_ref else "T",
                "split": split,
                "pretrain": {
                    "kind": "musicality",
                    "defect": kind,
                    "severities": [SEVERITIES[better], SEVERITIES[worse]]
                    if a_first
                    else [SEVERITIES[worse], SEVERITIES[better]],
                    "track": track,
                },
            }
        )
        counts[split]["musicality"] += 1
        bar.update(1)

    if spec.n_text:
        # Descriptor statistics of a few excerpts per track, ranked over the whole pool into terciles.
        for track in ids:
            descriptor_cache[track] = []
            for _ in range(3):
                excerpt, _ = _excerpt(waves[track], rng.uniform(*spec.excerpt_s), rng)
                descriptor_cache[track].append((excerpt, _descriptors(excerpt)))
        stats = np.stack([d for items in descriptor_cache.values() for _, d in items])  # (N, 3)
        low, high = np.quantile(stats, 1 / 3, axis=0), np.quantile(stats, 2 / 3, axis=0)

        def bins(d: np.ndarray) -> np.ndarray:
            return np.where(d <= low, 0, np.where(d >= high, 1, -1))

        entries = [(t, e, bins(d)) for t, items in descriptor_cache.items() for e, d in items]
        for k in range(spec.n_text):
            split = pick_split(k)
            usable = [e for e in entries if split_of[e[0]] == split] or entries
            for _ in range(50):
                track, excerpt, b = usable[int(rng.integers(len(usable)))]
                named = np.flatnonzero(b >= 0)
                if len(named) == 0:
                    continue
                attr = int(rng.choice(named))
                opposite = [e for e in usable if e[2][attr] == 1 - b[attr]]
                if opposite:
                    break
            else:
                continue
            _, other, _ = opposite[int(rng.integers(len(opposite)))]
            shown = np.full(3, -1)
            shown[attr] = b[attr]
            for j in named:  # sometimes name more of the matching excerpt's attributes
                if rng.random() < 0.5:
                    shown[j] = b[j]
            level = rng.uniform(*spec.level_dbfs)
            a_first = bool(rng.random() < 0.5)
            name = f"{split[0]}tx{k:05d}"
            pair = [levelled(excerpt, level), levelled(other, level)]
            if not a_first:
                pair.reverse()
            rows[split].append(
                {
                    "prompt": _describe(shown),
                    "lyrics": "",
                    "ref-audio-path": "",
                    "audio-path": write(f"{name}_a", pair[0]),
                    "audio2": write(f"{name}_b", pair[1]),
                    "preference-alignment": "model_a" if a_first else "model_b",
                    "prompt id": name,
                    "source": "pretrain-text",
                    "modality": "T",
                    "split": split,
                    "pretrain": {"kind": "text", "attribute": _DESCRIPTOR_WORDS[attr]},
                }
            )
            counts[split]["text"] += 1
            bar.update(1)
    bar.close()

    for split, split_rows in rows.items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for row in split_rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = PretrainSummary(
        out,
        {s: len(by_split[s]) for s in by_split},
        counts,
        clips,
        {s: by_split[s] for s in by_split},
    )
    (out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2))
    return summary
