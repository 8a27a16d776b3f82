"""Off-policy evaluation (OPE) of a routing policy on logged decisions (issue 4, item 6).

The question: what mean reward would a *candidate* policy π have earned on the requests
that the *logging* policy μ actually routed? Only μ's choices have outcomes, so π's
value is estimated from them, each logged choice reweighted by how much more (or less)
often π would have made it.

**Logged data.** Rounds i = 1..n (`LoggedRound`), each a routed decision with its
outcome: the request x_i (routing context, hence the state key; the offered providers;
the constraints; Ψ), the provider a_i that μ chose with the propensity μ_i = μ(a_i | x_i)
it recorded (CONTRACT §3.2 `route.propensity`), and the reward r_i (seed 002's `reward`
of the §3.3 outcome).

**Target probabilities: replay** (`replay`). π_i(·) = π(· | x_i) is the candidate's
`probabilities` over the providers *it* would consider (the offers screened under its own
`mode`), drawn with the generator the gate uses for that request
(`decision_rng(seed, tenant, request_id)`), so a Thompson candidate's Monte Carlo
probabilities are reproducible, and the logging policy replayed reproduces its own
logged propensities. A learning candidate is trained online on the log, in log order,
with one policy state per tenant as the router keeps it: row i's probabilities are
computed *before* the candidate learns row i's reward (on the logged provider, with its
features), that is from rows 1..i−1 only. The estimate is then the mean value of the
sequence of policies π_1..π_n the candidate would have been at each step having seen the
same outcomes. As π_i never depends on row i, every IPS/DR term is still unbiased for
π_i's value (a martingale argument); bear in mind that the candidate learns from μ's
choices, not its own. `learn=False` evaluates a frozen policy (fresh, or an imported
Q-table). A row where the candidate has no feasible provider (it would defer) has
π_i ≡ 0: it adds 0 to IPS and DR (a deferred request earns no reward), drops out of
SNIPS's normalisation, and is counted (`Replay.defers`).

**Estimators** (`off_policy_estimates`), with importance weights w_i = π_i(a_i) / μ_i, capped at
`clip` when one is given (none by default):

- IPS   = (1/n) Σ w_i·r_i
- SNIPS = Σ w_i·r_i / Σ w_i                  (none when Σ w_i = 0)
- DR    = (1/n) Σ [q̂_i(π_i) + w_i·(r_i − q̂_i(a_i))],  q̂_i(π_i) = Σ_a π_i(a)·q̂_i(a)
- observed, μ's own value = (1/n) Σ r_i

IPS and DR are unbiased when the propensities are right and π only picks providers μ
could pick; DR's variance is smaller the better q̂ predicts the reward. SNIPS is slightly
biased (consistent), has lower variance, and moves with a shift of every reward by the
same shift, which IPS does not. Clipping trades variance for a downward bias.

**Reward model** (`CrossFitRewards`, for DR). q̂(s, a) is the mean logged reward of
provider a in state key s, shrunk towards provider a's mean over every state with the
weight of one observation; the provider's mean is shrunk the same way towards the global
mean (so a pair never seen falls back to the provider's mean, then to the global mean;
with no data at all q̂ is 0). It is cross-fitted: the rows are dealt at random (seeded)
into K folds, and row i's q̂_i is fitted on the other folds only, so row i's own reward
never enters its correction term (no in-sample overfit bias).

**Confidence intervals.** Bootstrap percentile intervals: B resamples of the rows with
replacement (seeded), each estimator recomputed on each resample from the per-row terms
(the replayed π_i and the cross-fitted q̂_i are held fixed); the interval is the
(1 − c)/2 and (1 + c)/2 quantiles of the B values and `se` their standard deviation.
Resamples with Σ w = 0 have no SNIPS and are left out of its interval.

**Diagnostics** (`WeightDiagnostics`): the effective sample size (Σ w)² / Σ w² (n when
every weight is equal, small when a few rows dominate), the mean weight (≈ 1 when the
propensities are right and π's support lies in μ's), the largest weight, and how many
rows have weight 0 (π would never have chosen the logged provider) or were clipped.

>>> r = np.array([1.0, 0.0, 1.0, 1.0])
>>> mu = np.array([0.5, 0.5, 0.5, 0.5])
>>> pi = np.array([1.0, 0.0, 1.0, 0.5])
>>> res = off_policy_estimates(OpeInputs(r, mu, pi, q_logged=np.zeros(4), q_target=np.zeros(4)), resamples=200)
>>> res.observed.value, res.ips.value, res.snips.value, res.dr.value
(0.75, 1.25, 1.0, 1.25)
>>> round(res.weights.ess, 4), res.weights.zero_weight_rows   # w = (2, 0, 2, 1): 25/9
(2.7778, 1)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np

from ._base import RoutingPolicy
from ._constraints import screen
from ._features import features_by_provider
from ._inputs import ConstraintsLike, ContextLike, ProviderLike, PsiLike, state_key
from ._router import decision_rng
from .exceptions import RouterError

_K = TypeVar("_K", bound=Hashable)

DEFAULT_RESAMPLES: Final = 2000
DEFAULT_CONFIDENCE: Final = 0.95
DEFAULT_FOLDS: Final = 5
SHRINKAGE: Final = 1.0
"""The weight (in observations) of the parent mean in `CrossFitRewards`' shrinkage."""
_CELLS_PER_CHUNK: Final = 4_000_000  # bootstrap indices held at once (32 MB of int64)


@dataclass(frozen=True, slots=True)
class LoggedRound:
    """One routed decision with its outcome: what off-policy evaluation learns from.

    `propensity` is the logging policy's probability of `provider_id` (in (0, 1]);
    `reward` is seed 002's reward of the outcome; `request_id` (the request's
    `event_id`) and `tenant` seed the candidate's generator like the gate's.
    """

    decision_id: str
    tenant: str
    request_id: str
    context: ContextLike | None
    providers: tuple[ProviderLike, ...]
    constraints: ConstraintsLike | None
    psi: PsiLike | None
    provider_id: str
    propensity: float
    reward: float
    policy: str = "unknown"

    def __post_init__(self) -> None:
        p = self.propensity
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < p <= 1.0:
            raise RouterError(f"decision {self.decision_id}: propensity must be in (0, 1], got {p!r}")
        r = self.reward
        if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r):
            raise RouterError(f"decision {self.decision_id}: reward must be a finite number, got {r!r}")
        if self.provider_id not in {p.provider_id for p in self.providers}:
            raise RouterError(f"decision {self.decision_id}: the chosen provider {self.provider_id!r} "
                              "is not among the offered providers")

    @property
    def state_key(self) -> str:
        return state_key(self.context)


@dataclass(frozen=True, slots=True)
class Replay:
    """The candidate's probabilities on each logged round (see the module's *replay*).

    `target[i]` = π_i(a_i), the probability of the logged provider; `distributions[i]`
    every provider's probability (empty where the candidate would defer).
    """

    target: np.ndarray
    distributions: tuple[Mapping[str, float], ...]
    defers: int
    policy: str
    learned: bool


def replay(initial: RoutingPolicy, rounds: Sequence[LoggedRound], *, learn: bool = True) -> Replay:
    """π_i for every round, the candidate learning online in log order (unless `learn` is
    False), one candidate per tenant, each starting from `initial`.

    >>> from resontinex.agents.router import ProviderState, RoutingConfig, make_policy
    >>> offers = (ProviderState("a", 1.0, 100, 90), ProviderState("b", 2.0, 100, 90))
    >>> logged = [LoggedRound(f"d-{i}", "acme", f"r-{i}", None, offers, None, None, "a", 0.5, 9.0)
    ...           for i in range(2)]
    >>> out = replay(make_policy(RoutingConfig()), logged)
    >>> out.target.round(5).tolist()   # a tie first; then 'a' is greedy and ε has decayed to 0.0995
    [0.5, 0.95025]
    """
    cfg = initial.cfg
    learners: dict[str, RoutingPolicy] = {}
    target = np.zeros(len(rounds))
    distributions: list[Mapping[str, float]] = []
    defers = 0
    for i, row in enumerate(rounds):
        policy = learners.get(row.tenant, initial)
        key = row.state_key
        screening = screen(row.providers, row.context, row.constraints, cfg.mode)
        if screening.feasible:
            candidates = [p for p in row.providers if p.provider_id in screening.candidates]
            features = features_by_provider(candidates, cfg.features)
            probs = policy.probabilities(key, screening.candidates, features, row.psi,
                                         decision_rng(cfg.seed, row.tenant, row.request_id))
        else:
            probs = {}
            defers += 1
        distributions.append(probs)
        target[i] = probs.get(row.provider_id, 0.0)
        if learn:
            logged_features = features_by_provider(row.providers, cfg.features)[row.provider_id]
            learners[row.tenant] = policy.update(key, row.provider_id, row.reward, logged_features)
    return Replay(target, tuple(distributions), defers, initial.name, learn)


class CrossFitRewards:
    """A cross-fitted reward model q̂ (see the module's *reward model*).

    `predict(i, a)` is q̂ for row i's state and provider `a`, fitted on the rows outside
    row i's fold. With n rows, min(folds, n) folds are used (one row: no other rows, q̂ 0).

    Four rows in four folds (leave one out): row 0 (provider a, reward 1) is predicted from
    rows 1-3 only: global mean 23/3, provider a's (3 + 23/3)/2 = 16/3, the pair's
    (3 + 16/3)/2 = 25/6; provider c, never seen, gets the global mean shrunk once, 23/3.

    >>> model = CrossFitRewards(["s", "s", "s", "s"], ["a", "a", "b", "b"], [1.0, 3.0, 10.0, 10.0], folds=4)
    >>> model.fold.tolist(), round(model.predict(0, "a"), 6), round(model.predict(0, "c"), 6)
    ([1, 2, 0, 3], 4.166667, 7.666667)
    """

    def __init__(self, states: Sequence[Hashable], actions: Sequence[Hashable],
                 rewards: Sequence[float] | np.ndarray, *, folds: int = DEFAULT_FOLDS, seed: int = 0) -> None:
        r = np.asarray(rewards, dtype=np.float64)
        n = len(r)
        if len(states) != n or len(actions) != n:
            raise RouterError("states, actions and rewards must have the same length")
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise RouterError(f"folds must be an integer >= 2, got {folds!r}")
        self.states, self.actions = list(states), list(actions)
        k = max(1, min(folds, n))
        self.fold = np.empty(n, dtype=np.intp)
        self.fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
        self.folds = k
        per_fold = [_Sums() for _ in range(k)]
        for i in range(n):
            per_fold[int(self.fold[i])].add(self.states[i], self.actions[i], float(r[i]))
        # each fold's training sums add up the other folds only: a row's reward never
        # enters its own fold's figures, not even as a rounding error
        self._training = [_Sums.merged(f for j, f in enumerate(per_fold) if j != k_) for k_ in range(k)]

    def predict(self, i: int, action: Hashable) -> float:
        """q̂ of `action` in row i's state, from the rows of the other folds."""
        train = self._training[int(self.fold[i])]
        g_sum, g_n = train.all
        overall = g_sum / g_n if g_n > 0 else 0.0
        a_sum, a_n = train.by_action.get(action, (0.0, 0))
        provider = (a_sum + SHRINKAGE * overall) / (a_n + SHRINKAGE)
        p_sum, p_n = train.by_pair.get((self.states[i], action), (0.0, 0))
        return (p_sum + SHRINKAGE * provider) / (p_n + SHRINKAGE)


@dataclass(slots=True)
class _Sums:
    """Sum and count of rewards: overall, per action, per (state, action)."""

    all: list[float] = field(default_factory=lambda: [0.0, 0])
    by_action: dict[Hashable, list[float]] = field(default_factory=dict)
    by_pair: dict[tuple[Hashable, Hashable], list[float]] = field(default_factory=dict)

    def add(self, state: Hashable, action: Hashable, reward: float) -> None:
        for cell in (self.all, self.by_action.setdefault(action, [0.0, 0]),
                     self.by_pair.setdefault((state, action), [0.0, 0])):
            cell[0] += reward
            cell[1] += 1

    @classmethod
    def merged(cls, parts: Iterable[_Sums]) -> _Sums:
        out = cls()
        for part in parts:
            out.all[0] += part.all[0]
            out.all[1] += part.all[1]
            _add_cells(out.by_action, part.by_action)
            _add_cells(out.by_pair, part.by_pair)
        return out


def _add_cells(target: dict[_K, list[float]], source: dict[_K, list[float]]) -> None:
    for key, (total, count) in source.items():
        cell = target.setdefault(key, [0.0, 0])
        cell[0] += total
        cell[1] += count


@dataclass(frozen=True, slots=True)
class OpeInputs:
    """The per-row arrays the estimators need (all of length n).

    `reward` r_i, `propensity` μ_i, `target` π_i(a_i), `q_logged` q̂_i(a_i) and
    `q_target` q̂_i(π_i) = Σ_a π_i(a)·q̂_i(a).
    """

    reward: np.ndarray
    propensity: np.ndarray
    target: np.ndarray
    q_logged: np.ndarray
    q_target: np.ndarray

    def __post_init__(self) -> None:
        arrays = {name: np.asarray(getattr(self, name), dtype=np.float64)
                  for name in ("reward", "propensity", "target", "q_logged", "q_target")}
        n = len(arrays["reward"])
        for name, a in arrays.items():
            if a.ndim != 1 or len(a) != n:
                raise RouterError(f"{name} must be a 1-D array of length {n}, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise RouterError(f"{name} must be finite")
            object.__setattr__(self, name, a)
        if n and (np.any(arrays["propensity"] <= 0.0) or np.any(arrays["propensity"] > 1.0)):
            raise RouterError("every propensity must be in (0, 1]")
        if n and (np.any(arrays["target"] < 0.0) or np.any(arrays["target"] > 1.0 + 1e-9)):
            raise RouterError("every target probability must be in [0, 1]")

    def __len__(self) -> int:
        return len(self.reward)


@dataclass(frozen=True, slots=True)
class OpeEstimate:
    """One estimate with its bootstrap standard error and percentile interval (None: undefined)."""

    value: float | None
    se: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "se": self.se, "ci": None if self.low is None else [self.low, self.high]}


@dataclass(frozen=True, slots=True)
class WeightDiagnostics:
    """How much the logged data says about the candidate (see the module's *diagnostics*)."""

    n: int
    ess: float
    mean_weight: float
    max_weight: float
    zero_weight_rows: int
    clipped_rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "ess": self.ess, "ess_fraction": self.ess / self.n if self.n else 0.0,
                "mean_weight": self.mean_weight, "max_weight": self.max_weight,
                "zero_weight_rows": self.zero_weight_rows, "clipped_rows": self.clipped_rows}


@dataclass(frozen=True, slots=True)
class OpeResult:
    """The observed value of the logging policy and the three estimates of the candidate's."""

    observed: OpeEstimate
    ips: OpeEstimate
    snips: OpeEstimate
    dr: OpeEstimate
    weights: WeightDiagnostics
    confidence: float
    resamples: int
    seed: int
    clip: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"logging": self.observed.as_dict(),
                "estimates": {"ips": self.ips.as_dict(), "snips": self.snips.as_dict(), "dr": self.dr.as_dict()},
                "weights": self.weights.as_dict(),
                "ci": {"method": "bootstrap percentile", "confidence": self.confidence,
                       "resamples": self.resamples, "seed": self.seed},
                "clip": self.clip}


def importance_weights(target: np.ndarray, propensity: np.ndarray, clip: float | None = None) -> np.ndarray:
    """w_i = π_i(a_i) / μ_i, capped at `clip` (None: no cap).

    >>> importance_weights(np.array([1.0, 0.2]), np.array([0.25, 0.5]), clip=3.0).tolist()
    [3.0, 0.4]
    """
    w = np.asarray(target, dtype=np.float64) / np.asarray(propensity, dtype=np.float64)
    return w if clip is None else np.minimum(w, clip)


def ips(w: np.ndarray, r: np.ndarray) -> float:
    """Inverse propensity scoring: mean(w·r)."""
    return float(np.mean(w * r))


def snips(w: np.ndarray, r: np.ndarray) -> float | None:
    """Self-normalised IPS: Σw·r / Σw (None when every weight is 0). The weights are scaled
    by their largest first (the ratio does not change): products of subnormal weights lose
    their precision (5e-324 × 1.25 is 5e-324)."""
    top = float(np.max(w)) if len(w) else 0.0
    if not top > 0.0:
        return None
    w = w / top
    return float(np.sum(w * r)) / float(np.sum(w))


def doubly_robust(w: np.ndarray, r: np.ndarray, q_logged: np.ndarray, q_target: np.ndarray) -> float:
    """Doubly robust: mean(q̂(π) + w·(r − q̂(a)))."""
    return float(np.mean(q_target + w * (r - q_logged)))


def effective_sample_size(w: np.ndarray) -> float:
    """(Σw)² / Σw² (0 when every weight is 0).

    >>> effective_sample_size(np.ones(10)), effective_sample_size(np.array([1.0, 0.0, 0.0]))
    (10.0, 1.0)
    """
    top = float(np.max(w)) if len(w) else 0.0
    if top <= 0.0:
        return 0.0
    scaled = np.asarray(w, dtype=np.float64) / top  # the ratio is scale-free; this avoids underflow
    return float(np.sum(scaled)) ** 2 / float(np.sum(np.square(scaled)))


def _check_settings(confidence: float, resamples: int, clip: float | None) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0.0 < confidence < 1.0:
        raise RouterError(f"confidence must be between 0 and 1, got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise RouterError(f"resamples must be an integer >= 2, got {resamples!r}")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float)
                             or not math.isfinite(clip) or clip <= 0.0):
        raise RouterError(f"clip must be a positive number, got {clip!r}")


def off_policy_estimates(data: OpeInputs, *, clip: float | None = None, confidence: float = DEFAULT_CONFIDENCE,
             resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> OpeResult:
    """Observed value, IPS, SNIPS and DR with bootstrap percentile intervals (see the module)."""
    _check_settings(confidence, resamples, clip)
    n = len(data)
    if n == 0:
        raise RouterError("no logged rounds to evaluate")
    raw = importance_weights(data.target, data.propensity)
    w = raw if clip is None else np.minimum(raw, clip)
    r = data.reward
    wr = w * r
    dr_terms = data.q_target + w * (r - data.q_logged)
    point = {"observed": float(np.mean(r)), "ips": ips(w, r), "snips": snips(w, r),
             "dr": doubly_robust(w, r, data.q_logged, data.q_target)}
    boot = _bootstrap(r, wr, w, dr_terms, resamples, seed)
    lo_q, hi_q = (1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0

    def summarise(name: str) -> OpeEstimate:
        values = boot[name]
        values = values[np.isfinite(values)]
        if point[name] is None or len(values) < 2:
            return OpeEstimate(point[name], None, None, None)
        low, high = np.quantile(values, [lo_q, hi_q])
        return OpeEstimate(point[name], float(np.std(values, ddof=1)), float(low), float(high))

    weights = WeightDiagnostics(n, effective_sample_size(w), float(np.mean(w)), float(np.max(w)),
                                int(np.count_nonzero(w == 0.0)),
                                0 if clip is None else int(np.count_nonzero(raw > clip)))
    return OpeResult(summarise("observed"), summarise("ips"), summarise("snips"), summarise("dr"), weights,
                     float(confidence), resamples, seed, None if clip is None else float(clip))


def _bootstrap(r: np.ndarray, wr: np.ndarray, w: np.ndarray, dr_terms: np.ndarray, resamples: int,
               seed: int) -> dict[str, np.ndarray]:
    """Each estimator on `resamples` resamples of the rows (with replacement)."""
    n = len(r)
    rng = np.random.default_rng(seed)
    out = {name: np.empty(resamples) for name in ("observed", "ips", "snips", "dr")}
    chunk = max(1, _CELLS_PER_CHUNK // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out["observed"][start:stop] = r[idx].mean(axis=1)
        sum_wr = wr[idx].sum(axis=1)
        sum_w = w[idx].sum(axis=1)
        out["ips"][start:stop] = sum_wr / n
        with np.errstate(divide="ignore", invalid="ignore"):
            out["snips"][start:stop] = np.where(sum_w > 0.0, sum_wr / np.where(sum_w > 0.0, sum_w, 1.0), np.nan)
        out["dr"][start:stop] = dr_terms[idx].mean(axis=1)
    return out


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A candidate policy evaluated on logged rounds: the estimates and how they were made."""

    result: OpeResult
    policy: str
    learned: bool
    rows: int
    defers: int
    folds: int
    logging_policies: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"candidate": {"policy": self.policy, "learning": "replay" if self.learned else "frozen",
                              "defers": self.defers},
                "rows": self.rows, "logging_policies": dict(sorted(self.logging_policies.items())),
                **self.result.as_dict(), "reward_model": {"kind": "state-provider mean, shrunk, cross-fitted",
                                                          "folds": self.folds}}


def evaluate_policy(initial: RoutingPolicy, rounds: Sequence[LoggedRound], *, learn: bool = True,
             clip: float | None = None, folds: int = DEFAULT_FOLDS, confidence: float = DEFAULT_CONFIDENCE,
             resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Evaluation:
    """Replay the candidate on the rounds, fit the cross-fitted reward model, estimate.

    `seed` seeds the folds and the bootstrap; the candidate's own draws use its
    configuration's `seed` (as the gate does).
    """
    _check_settings(confidence, resamples, clip)
    if not rounds:
        raise RouterError("no logged rounds to evaluate")
    replayed = replay(initial, rounds, learn=learn)
    rewards = np.array([row.reward for row in rounds])
    model = CrossFitRewards([row.state_key for row in rounds], [row.provider_id for row in rounds], rewards,
                            folds=folds, seed=seed)
    q_logged = np.array([model.predict(i, row.provider_id) for i, row in enumerate(rounds)])
    q_target = np.array([math.fsum(p * model.predict(i, a) for a, p in dist.items())
                         for i, dist in enumerate(replayed.distributions)])
    data = OpeInputs(rewards, np.array([row.propensity for row in rounds]), replayed.target, q_logged, q_target)
    result = off_policy_estimates(data, clip=clip, confidence=confidence, resamples=resamples, seed=seed)
    return Evaluation(result, replayed.policy, learn, len(rounds), replayed.defers, model.folds,
                      Counter(row.policy for row in rounds))
