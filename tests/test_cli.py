"""The `airquill` command end to end, offline, with the shipped model."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def airquill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airquill", *args], capture_output=True, text=True, env=OFFLINE,
                          timeout=300)


def test_generate_with_the_shipped_model_offline():
    result = airquill("generate", "And God said", "--length", "40", "--steps", "10", "--no-live")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("And God said")
    assert len(result.stdout.strip()) > len("And God said") + 10


def test_live_view_draws_noise_then_text():
    result = airquill("generate", "In the beginning", "--length", "32", "--steps", "8", "--live", "--pace", "0")
    assert result.returncode == 0, result.stderr
    assert "step 1/8" in result.stderr and "step 8/8" in result.stderr
    assert any(glyph in result.stderr for glyph in "░▒▓")  # masked positions shown as noise


@pytest.mark.parametrize("args,message", [
    (["generate", ""], "prompt is empty"),
    (["generate", "Hi", "--length", "0"], "length must be between"),
    (["generate", "Hi", "--steps", "0"], "steps must be at least 1"),
    (["generate", "Hi", "--model", "/no/such/model"], "model path does not exist"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    result = airquill(*args)
    assert result.returncode == 2 and message in result.stderr


def test_family_picks_the_shipped_model_of_that_family():
    from airquill.assets import MODELS

    assert airquill("generate", "Hi", "--family", "masked", "--model", "kjv-masked").returncode == 2  # not both
    masked = airquill("generate", "And God said", "--family", "masked", "--length", "16", "--steps", "4",
                      "--no-live")
    assert masked.returncode == 0 and masked.stdout.startswith("And God said")
    for family in ("uniform", "continuous"):
        assert (MODELS / f"kjv-{family}").is_dir(), f"kjv-{family} ships with this version"
        run = airquill("generate", "And God said", "--family", family, "--length", "16", "--steps", "4", "--no-live")
        assert run.returncode == 0 and run.stdout.startswith("And God said"), run.stderr


def test_a_missing_shipped_model_is_a_clear_error(monkeypatch, capsys):
    from airquill import assets
    from airquill.cli import main

    monkeypatch.setitem(assets.SHIPPED, "uniform", "kjv-gone")
    assert main(["generate", "And God said", "--family", "uniform", "--no-live"]) == 2
    assert "the shipped uniform model kjv-gone is missing" in capsys.readouterr().err
