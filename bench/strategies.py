"""Benchmark: votes each assignment strategy needs to reach a confident leaderboard, in simulation.

A synthetic campaign: ``--systems`` generators with known Bradley–Terry strengths (normal quantiles
times ``--spread``), ``--comparisons`` comparisons of random system pairs, each with its own clip effect (some
clips of a good system are bad), an overlap target, and ``--annotators`` simulated annotators who differ
in how sharply they hear differences and in how often they answer at random; some answers are ties
(half a win). A simulated reward model scores every comparison with noise.

Annotators arrive one at a time, in random order. Each hand-out does what ``assignment_next`` does: the
comparisons with room that this annotator has not voted on, fewest votes first with a random tie-break,
the strategy's pool of them (``strategies.candidate_pool_size``), reordered by the strategy's own
function from ``annotate.labeling.strategies`` (``outcome_uncertainty``, ``pair_gains``,
``order_by_priority``); the first one is voted on. The informative strategy's gains are recomputed every
``--refresh`` votes, as its cache would on a busy campaign.

Every ``--check-every`` votes the leaderboard is refitted (``bradley_terry.fit``) and two targets checked:

(a) top identified with 95% confidence: the estimated top system beats every other one with a one-sided
    simultaneous 95% bound (Bonferroni over the K - 1 differences, Wald intervals of the fit) and it is the
    true top system;
(b) Kendall's tau between the fitted and the true ranking >= ``--tau``, and it stays there until the
    vote budget (comparisons x overlap target) is spent.

For speed the checks use the Wald intervals of the same fit (``bradley_terry.fisher_covariance``) rather
than the page's bootstrap; both estimate the same sampling spread. (The page's rank range [1, 1] needs the
top system's own interval clear of every other's, a stricter rule than a confident difference.) A run
that never reaches a target is counted at the full budget (and reported as censored), which flatters the
slower strategy.

Usage: .venv/bin/python bench/strategies.py [--seeds 20] [--systems 8] [--comparisons 400] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Thousands of tiny fits: threaded BLAS only contends (set before numpy loads it).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _setup_django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django

    django.setup()


@dataclass
class World:
    strengths: np.ndarray  # (K,)
    sys_a: np.ndarray  # (M,)
    sys_b: np.ndarray  # (M,)
    clip: np.ndarray  # (M,) clip effect on the logit, for clip_a
    rm_prob: np.ndarray  # (M,) the simulated reward model's P(clip_a wins)
    sharpness: np.ndarray  # (R,)
    lapse: np.ndarray  # (R,)


def make_world(rng: np.random.Generator, args: argparse.Namespace) -> World:
    k, m, r = args.systems, args.comparisons, args.annotators
    # Evenly spread normal quantiles in random order: every seed has the same gaps (the top two are
    # spread * 0.65 apart at K = 8), so a target is neither trivial nor out of reach by the luck of a draw.
    strengths = rng.permutation(norm.ppf((np.arange(k) + 0.5) / k) * args.spread)
    a = rng.integers(0, k, m)
    b = (a + rng.integers(1, k, m)) % k
    clip = rng.normal(0.0, args.clip_sd, m)
    true_logit = strengths[a] - strengths[b] + clip
    rm_prob = 1.0 / (1.0 + np.exp(-(true_logit + rng.normal(0.0, args.rm_noise, m))))
    return World(
        strengths=strengths,
        sys_a=a,
        sys_b=b,
        clip=clip,
        rm_prob=rm_prob,
        sharpness=rng.uniform(0.5, 1.5, r),
        lapse=rng.uniform(0.0, 0.2, r),
    )


def vote(world: World, c: int, annotator: int, rng: np.random.Generator, tie_rate: float) -> float:
    """Share of the win for clip_a: 1, 0 or 0.5 (a tie, likelier when the clips are close)."""
    d = world.strengths[world.sys_a[c]] - world.strengths[world.sys_b[c]] + world.clip[c]
    if rng.random() < tie_rate * np.exp(-abs(d)):
        return 0.5
    lapse = world.lapse[annotator]
    p = lapse / 2 + (1 - lapse) / (1 + np.exp(-world.sharpness[annotator] * d))
    return float(rng.random() < p)


def top_identified(theta: np.ndarray, covariance: np.ndarray, true_top: int, confidence: float = 0.95) -> bool:
    """The fitted top system is the true one and beats each other system at simultaneous ``confidence``."""
    top = int(np.argmax(theta))
    if top != true_top:
        return False
    others = np.arange(len(theta)) != top
    var = covariance[top, top] + np.diag(covariance)[others] - 2 * covariance[top, others]
    z = norm.ppf(1 - (1 - confidence) / (len(theta) - 1))
    return bool(((theta[top] - theta[others]) > z * np.sqrt(var)).all())


def run(strategy: str, world: World, seed: int, args: argparse.Namespace) -> tuple[int | None, int | None]:
    """Votes at which targets (a) and (b) were reached; None when the budget ran out first."""
    from annotate.agreement import bradley_terry as bt
    from annotate.labeling import strategies

    rng = np.random.default_rng(seed)
    k, m = args.systems, args.comparisons
    pool = strategies.POOL_SIZE if strategy != "balanced" else 25
    n = np.zeros(m, dtype=np.int64)
    wins_a = np.zeros(m)
    done = np.zeros((args.annotators, m), dtype=bool)
    rows_i: list[int] = []
    rows_j: list[int] = []
    rows_y: list[float] = []
    gain = np.zeros((k, k))
    true_top = int(np.argmax(world.strengths))
    top_at: int | None = None
    tau_ok_since: int | None = None
    budget = m * args.overlap
    for step in range(1, budget + 1):
        annotator = int(rng.integers(args.annotators))
        open_ = np.flatnonzero((n < args.overlap) & ~done[annotator])
        if not len(open_):
            continue
        # Fewest votes first, random tie-break (the SQL's seeded hash), then the strategy's pool.
        candidates = open_[np.lexsort((rng.random(len(open_)), n[open_]))][:pool].tolist()
        if strategy == "uncertain":
            priority = strategies.outcome_uncertainty(world.rm_prob[candidates], wins_a[candidates], n[candidates])
            candidates = strategies.order_by_priority(candidates, priority.tolist(), set())
        elif strategy == "informative":
            if (step - 1) % args.refresh == 0:
                y = np.array(rows_y)
                counts = np.ones(len(y))
                gain = strategies.pair_gains(
                    k, [(np.array(rows_i, dtype=np.int64), np.array(rows_j, dtype=np.int64), y, counts)]
                )
            priority = gain[world.sys_a[candidates], world.sys_b[candidates]]
            candidates = strategies.order_by_priority(candidates, priority.tolist(), set())
        c = candidates[0]
        y_c = vote(world, c, annotator, rng, args.tie_rate)
        n[c] += 1
        wins_a[c] += y_c
        done[annotator, c] = True
        rows_i.append(int(world.sys_a[c]))
        rows_j.append(int(world.sys_b[c]))
        rows_y.append(y_c)
        if step % args.check_every:
            continue
        i, j, y = np.array(rows_i), np.array(rows_j), np.array(rows_y)
        theta = bt.fit(i, j, y, k).strengths
        if top_at is None and top_identified(theta, bt.fisher_covariance(theta, i, j, k), true_top):
            top_at = step
        tau = bt.kendall_tau(theta, world.strengths) or 0.0
        if tau >= args.tau:
            tau_ok_since = tau_ok_since or step
        else:
            tau_ok_since = None
    return top_at, tau_ok_since


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--systems", type=int, default=8)
    parser.add_argument("--spread", type=float, default=0.6, help="sd of the true strengths (logit)")
    parser.add_argument("--comparisons", type=int, default=400)
    parser.add_argument("--overlap", type=int, default=5, help="overlap target (votes per comparison)")
    parser.add_argument("--annotators", type=int, default=60)
    parser.add_argument("--clip-sd", type=float, default=0.5, help="sd of the per-comparison clip effect")
    parser.add_argument("--rm-noise", type=float, default=0.7, help="sd of the reward model's logit error")
    parser.add_argument("--tie-rate", type=float, default=0.1)
    parser.add_argument("--tau", type=float, default=0.8, help="target Kendall tau with the true ranking")
    parser.add_argument("--check-every", type=int, default=25)
    parser.add_argument("--strategies", default="uncertain,informative", help="compared with balanced")
    parser.add_argument("--refresh", type=int, default=10, help="votes between informative recomputations")
    args = parser.parse_args()
    _setup_django()
    names = ("balanced", *[name for name in args.strategies.split(",") if name != "balanced"])
    budget = args.comparisons * args.overlap
    results: dict[str, list[tuple[int | None, int | None]]] = {name: [] for name in names}
    started = time.perf_counter()
    for seed in range(args.seeds):
        world = make_world(np.random.default_rng(10_000 + seed), args)
        for name in names:
            results[name].append(run(name, world, seed, args))
    elapsed = time.perf_counter() - started
    print(
        f"{args.seeds} seeds, {args.systems} systems (sd {args.spread}), {args.comparisons} comparisons x overlap "
        f"{args.overlap} = {budget} votes budget, {args.annotators} annotators; targets: (a) true top ahead of "
        f"all at simultaneous 95%, (b) Kendall tau >= {args.tau} for good; checked every {args.check_every} votes; "
        f"{elapsed:.0f} s"
    )
    column = f"{{:>17}} {'censored':>9} {'ratio':>6}"
    header = f"{'strategy':<12} " + column.format("(a) votes ± sem") + "   " + column.format("(b) votes ± sem")
    print(header)
    print("-" * len(header))
    base: dict[int, float] = {}
    for name in names:
        cells = []
        for target in (0, 1):
            reached = [r[target] for r in results[name]]
            votes = np.array([budget if v is None else v for v in reached], dtype=float)
            mean = float(votes.mean())
            base.setdefault(target, mean)
            censored = sum(v is None for v in reached)
            sem = float(votes.std(ddof=1) / np.sqrt(len(votes))) if len(votes) > 1 else 0.0
            cells.append(f"{f'{mean:.0f} ± {sem:.0f}':>17} {censored:>9} {mean / base[target]:>6.2f}")
        print(f"{name:<12} {cells[0]}   {cells[1]}")


if __name__ == "__main__":
    main()
