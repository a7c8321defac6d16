"""`airquill bench families` end to end on small models: the shipped masked model, a tiny uniform-noise model in
DiffusionGemma's shape, a tiny continuous model and a tiny AR scorer (random, sharing the shipped tokenizer), and
the tiny DiffusionGemma-shaped speed row. A smoke run: the figures exist and are consistent, not good."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from airquill.assets import MODELS
from airquill.server.training.architecture import ModelShape, build_model


def test_bench_families_runs_end_to_end(tmp_path):
    shipped = AutoTokenizer.from_pretrained(str(MODELS / "kjv-masked"))
    shape = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, expert_intermediate=16)
    for family in ("ar", "uniform", "continuous"):
        model = build_model(shape, shipped, family, block_size=8, context=64, diffusion_steps=40)
        model.save_pretrained(tmp_path / family)
        shipped.save_pretrained(tmp_path / family)
    result = subprocess.run(
        [sys.executable, "-m", "airquill", "bench", "families", "--quick", "--json", "--batch", "1", "2",
         "--length", "16", "--long-length", "32", "--shaped", "tiny", "--uniform-model", str(tmp_path / "uniform"),
         "--continuous-model", str(tmp_path / "continuous"),
         "--ar-model", str(tmp_path / "ar"), "--plot", str(tmp_path / "plot.png")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("uniform_speedup_b1", "uniform_speedup_b2", "masked_speedup_b1", "prefix_cache_speedup_uniform",
                "prefix_cache_speedup_masked", "diffusion_gemma_shaped_tokens_per_s", "continuous_speedup_b1",
                "prefix_cache_speedup_continuous", "keyword_success", "keyword_quality_cost", "length_success",
                "style_success"):
        assert key in out, key
    rows = out["batches"]["1"]["rows"]
    assert rows[0]["family"] == "ar" and rows[0]["speedup"] == 1.0
    assert {r["family"] for r in rows} == {"ar", "masked", "uniform", "continuous"}
    assert all(r["tokens_per_s"] > 0 and r["genppl"] > 1 and r["steps"] >= 1 for r in rows)
    # two canvases of 8 at a fixed 2 steps each: 4 forward passes per request
    fixed = next(r for r in rows if r["setting"] == "uniform fixed 2 steps/canvas")
    assert fixed["steps"] == 4
    cache = out["prefix_cache"]["rows"]
    # continuous: steps per canvas, on the model's own schedule; the fast-sampling pair at the largest batch only
    steps = {r["setting"]: r["steps"] for r in out["batches"]["2"]["rows"] if r["family"] == "continuous"}
    assert steps["continuous sqrt 8 steps/canvas"] == 2 * 8
    assert steps["continuous sqrt T = 40 steps/canvas"] == 2 * 40 and "continuous sqrt T/20 = 2 steps/canvas" in steps
    assert not any("T/20" in r["setting"] for r in rows)
    assert out["fast_sampling_quality_loss"] is not None and out["continuous_genppl_vs_masked_64"] is None  # 16 tokens
    assert out["adaptive_vs_best_fixed"] is None  # the random model recorded no training losses
    for family in ("masked", "uniform", "continuous"):
        on, off = (next(r for r in cache if r["family"] == family and r["prefix_cache"] is c) for c in (True, False))
        assert on["model_tokens_per_token"] < off["model_tokens_per_token"], family
    assert out["diffusion_gemma_shaped"]["steps"] > 1 and out["diffusion_gemma_shaped_tokens_per_s"] > 0
    controls = {(r["family"], r["control"]): r for r in out["controls"]["rows"]}
    by_family = out["controls_by_family"]
    assert set(by_family) == {"masked", "uniform", "continuous"}
    for family in by_family:
        none = controls[family, "unconstrained"]
        assert none["success"] == 1.0 and none["quality_cost"] == 0.0
        assert by_family[family]["keyword_success"] == controls[family, "keyword (guided placement)"]["success"] > 0
    assert out["keyword_success"] == min(f["keyword_success"] for f in by_family.values())
    assert out["keyword_quality_cost"] == max(f["keyword_quality_cost"] for f in by_family.values())
    assert ("continuous", "keyword (latents only)") in controls and ("continuous", "style (rounding logits)") in controls
    assert 0 <= out["length_success"] <= 1 and 0 <= out["style_success"] <= 1
    assert (tmp_path / "plot.png").stat().st_size > 1000


def _tiny_uniform_twins(tmp_path):
    """A tiny random uniform model, the same with its config saying absorbing noise, and a tiny AR scorer."""
    shipped = AutoTokenizer.from_pretrained(str(MODELS / "kjv-masked"))
    shape = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, expert_intermediate=16)
    for name, family in (("ar", "ar"), ("uniform", "uniform"), ("absorbing", "uniform")):
        model = build_model(shape, shipped, family, block_size=8, context=64)
        if name == "absorbing":
            model.config.airquill_noise = "absorbing"
        model.save_pretrained(tmp_path / name)
        shipped.save_pretrained(tmp_path / name)


def test_the_absorbing_twin_runs_every_uniform_setting(tmp_path):
    _tiny_uniform_twins(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "airquill", "bench", "families", "--quick", "--json", "--batch", "2",
         "--length", "16", "--long-length", "32", "--families", "uniform", "absorbing", "--no-controls",
         "--uniform-model", str(tmp_path / "uniform"), "--absorbing-model", str(tmp_path / "absorbing"),
         "--ar-model", str(tmp_path / "ar")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    rows = out["batches"]["2"]["rows"]
    assert [r["family"] for r in rows][0] == "ar" and {r["family"] for r in rows} == {"ar", "uniform", "absorbing"}
    uniform = {r["setting"]: r for r in rows if r["family"] == "uniform"}
    absorbing = {r["setting"].replace("absorbing", "uniform", 1): r for r in rows if r["family"] == "absorbing"}
    assert uniform.keys() == absorbing.keys() and len(uniform) >= 2
    for label, row in absorbing.items():  # same settings, same step budget
        assert row["steps"] == uniform[label]["steps"] or "default" in label
    for key in ("genppl", "entropy"):
        ratios = sorted(absorbing[k][key] / uniform[k][key] for k in uniform)
        assert ratios[0] <= out["absorbing_vs_uniform_b2"][key] <= ratios[-1]
    assert out["controls"]["rows"] == [] and "keyword_success" not in out  # --no-controls
    assert {r["family"] for r in out["prefix_cache"]["rows"]} == {"uniform"}


def test_a_twin_given_as_the_wrong_noise_is_refused(tmp_path):
    from airquill.server.bench.families import load_families

    _tiny_uniform_twins(tmp_path)
    with pytest.raises(ValueError, match="absorbing noise: give it as the --absorbing-model"):
        load_families(model=None, uniform_model=str(tmp_path / "absorbing"), continuous_model=None,
                      absorbing_model=None, families=("uniform",), device="cpu")
    with pytest.raises(ValueError, match="uniform noise: give it as the --uniform-model"):
        load_families(model=None, uniform_model=None, continuous_model=None,
                      absorbing_model=str(tmp_path / "uniform"), families=("absorbing",), device="cpu")
    with pytest.raises(ValueError, match="needs --absorbing-model"):
        load_families(model=None, uniform_model=None, continuous_model=None, absorbing_model=None,
                      families=("absorbing",), device="cpu")
    with pytest.raises(ValueError, match="no model for the families"):
        load_families(model=None, uniform_model=None, continuous_model=None, absorbing_model=None, families=(),
                      device="cpu")
    with pytest.raises(ValueError, match="unknown families"):
        load_families(model=None, uniform_model=None, continuous_model=None, absorbing_model=None,
                      families=("gaussian",), device="cpu")
