"""The shape the project promises: one import direction, a torch-free `shared`, assets inside the wheel."""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "transformers", "tokenizers", "moderngl", "glfw", "OpenGL", "xr", "mediapipe", "vosk", "cv2"}


def imports(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path] = names
    return found


@pytest.mark.parametrize("package,forbidden", [
    ("server", {"airquill.vr_client"}),
    ("vr_client", {"airquill.server"}),
    ("shared", {"airquill.server", "airquill.vr_client", *HEAVY}),
])
def test_import_direction(package, forbidden):
    for path, names in imports(package).items():
        bad = {n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", ["server", "shared", "vr_client"])
def test_no_generic_top_level_names(package):
    for path, names in imports(package).items():
        assert not {n for n in names if n.split(".")[0] in {"server", "shared", "vr_client"}}, path


def test_shared_and_terminal_view_import_without_torch():
    code = ("import sys, airquill.shared.step, airquill.shared.text_state, airquill.vr_client.terminal, airquill.cli;"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in %r); print(heavy); assert not heavy" % HEAVY)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wheel_carries_the_assets(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("airquill-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "airquill/assets/corpus/kjv.txt.gz" in names
    assert "airquill/assets/models/kjv-masked/model.safetensors" in names
    assert "airquill/server/sampling/masked.py" in names and "airquill/shared/step.py" in names
    assert not any(n.startswith(("server/", "shared/", "vr_client/")) for n in names)
