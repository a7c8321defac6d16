"""Benchmark quality functions give known values on fixed inputs."""
from __future__ import annotations

import math

import pytest
import torch

from airquill.assets import MODELS
from airquill.server.bench.quality import distinct_n, generative_perplexity, mean_unigram_entropy, unigram_entropy
from airquill.server.training.architecture import ModelShape, build_model


def test_entropy_of_known_distributions():
    assert unigram_entropy([7, 7, 7, 7]) == 0.0
    assert unigram_entropy([1, 2, 3, 4]) == pytest.approx(math.log(4))
    assert unigram_entropy([1, 1, 2, 2]) == pytest.approx(math.log(2))
    assert mean_unigram_entropy([[1, 2], [3, 3]]) == pytest.approx(math.log(2) / 2)


def test_distinct_2():
    assert distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_n([[1, 2, 1, 2, 1, 2]], 2) == pytest.approx(2 / 5)
    assert distinct_n([[5]], 2) == 0.0


def test_perplexity_under_a_uniform_model_is_the_vocabulary_size(tokenizer):
    model = build_model(ModelShape(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tokenizer,
                        "ar", block_size=8)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # zero logits everywhere: every token has probability 1/V
    ppl = generative_perplexity(model, [[5, 6], [7]], [[8, 9, 10], [11, 12]])
    assert ppl == pytest.approx(len(tokenizer), rel=1e-5)


def test_perplexity_of_a_certain_model_is_one(tokenizer):
    model = build_model(ModelShape(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tokenizer,
                        "ar", block_size=8)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.lm_head.weight.zero_()
    # a bias towards one token via a huge embedding is not available; instead score a constant text under a
    # model whose logits we force through a hook
    target = 9

    def force(module, args, output):
        output.logits[..., :] = -1e4
        output.logits[..., target] = 1e4
        return output

    handle = model.register_forward_hook(force)
    try:
        assert generative_perplexity(model, [[4]], [[target] * 5]) == pytest.approx(1.0)
    finally:
        handle.remove()


def test_bench_sampler_runs_end_to_end(tokenizer, tmp_path):
    """A smoke run of `airquill bench sampler --quick` against a small AR scorer: the JSON keys are there, and a
    batch smaller than `--samples` runs in rounds (3 prompts at batch 1, two rounds of 2 at batch 2)."""
    import json
    import subprocess
    import sys

    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(str(MODELS / "kjv-masked"))
    scorer = build_model(ModelShape(hidden=32, layers=1, heads=2, intermediate=64), shipped, "ar", block_size=8)
    scorer.save_pretrained(tmp_path / "ar")
    shipped.save_pretrained(tmp_path / "ar")
    result = subprocess.run([sys.executable, "-m", "airquill", "bench", "sampler", "--quick", "--json", "--batch", "1",
                             "2", "--samples", "3", "--length", "16", "--ar-model", str(tmp_path / "ar"), "--plot",
                             str(tmp_path / "plot.png")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("speedup_b1", "speedup_b2", "default_genppl_vs_heldout", "default_entropy_gap"):
        assert key in out
    rows = out["batches"]["1"]["rows"]
    assert rows[0]["family"] == "ar" and rows[0]["speedup"] == 1.0
    assert all(r["tokens_per_s"] > 0 and r["genppl"] > 1 for r in rows)
    assert {r["prompts"] for r in rows} == {3} and {r["prompts"] for r in out["batches"]["2"]["rows"]} == {4}
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_oracle_steps_start_at_each_text_and_at_every_unsure_token():
    from airquill.server.bench.parallelism import oracle_tokens_per_step

    texts = [[0.1, 0.9, 0.9, 0.2], [0.6, 0.4]]
    assert oracle_tokens_per_step(texts, 0.5) == pytest.approx(6 / 4)  # steps at 0.1, 0.2 | 0.6, 0.4
    assert oracle_tokens_per_step(texts, 0.95) == 1.0  # nothing is sure: one token a step
    assert oracle_tokens_per_step(texts, 0.0) == 3.0  # everything is: one step a text
    with pytest.raises(ValueError):
        oracle_tokens_per_step([[]], 0.5)


def test_drawn_probabilities_match_perplexity_at_temperature_one(tokenizer):
    """Untempered and uncut, the geometric mean of the drawn tokens' probabilities is 1 / perplexity; a cut
    nucleus only raises what it keeps."""
    from airquill.server.bench.quality import drawn_probabilities

    torch.manual_seed(0)
    model = build_model(ModelShape(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tokenizer,
                        "ar", block_size=8).eval()
    prompts, samples = [[5, 6], [7]], [[8, 9, 10], [11, 12]]
    probs = drawn_probabilities(model, prompts, samples, temperature=1.0, top_p=1.0, batch_size=1)
    assert [len(p) for p in probs] == [3, 2]
    logs = [math.log(p) for row in probs for p in row]
    assert math.exp(-sum(logs) / len(logs)) == pytest.approx(generative_perplexity(model, prompts, samples), rel=1e-5)
    cut = drawn_probabilities(model, prompts, samples, temperature=1.0, top_p=0.5)
    assert all(c == 0.0 or c >= p for rc, rp in zip(cut, probs) for c, p in zip(rc, rp))


def test_bench_parallelism_runs_end_to_end(tokenizer, tmp_path):
    """A smoke run of `airquill bench parallelism` against a small AR twin: one row per threshold x block after
    the twin's, each sized against the twin's forward pass; a model of another family is refused in one line."""
    import json
    import subprocess
    import sys

    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(str(MODELS / "kjv-masked"))
    twin = build_model(ModelShape(hidden=32, layers=1, heads=2, intermediate=64), shipped, "ar", block_size=8)
    twin.save_pretrained(tmp_path / "ar")
    shipped.save_pretrained(tmp_path / "ar")
    command = [sys.executable, "-m", "airquill", "bench", "parallelism", "--json", "--samples", "2", "--length", "16",
               "--thresholds", "0.9", "0.3", "--blocks", "8", "--confidences", "0.5", "--target", "3",
               "--ar-model", str(tmp_path / "ar")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    rows = out["rows"]
    assert [r["setting"] for r in rows] == ["ar (generate, KV cache)", "threshold 0.9, block 8",
                                            "threshold 0.3, block 8"]
    assert rows[0]["tokens_per_step_needed"] == pytest.approx(3.0) and {r["prompts"] for r in rows} == {2}
    for r in rows[1:]:
        assert r["tokens_per_step"] >= 1.0  # a step commits at least one token
        assert r["tokens_per_step_needed"] == pytest.approx(3 * r["ms_per_forward"] / out["twin_ms_per_forward"])
    assert out["oracle_tokens_per_step"]["0.5"] >= 1.0
    refused = subprocess.run(command[:-2] + ["--ar-model", str(tmp_path / "ar"), "--model",
                                             str(MODELS / "kjv-uniform")], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "runs the masked family" in refused.stderr
    assert "Traceback" not in refused.stderr
