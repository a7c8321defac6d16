"""Which host can run here: an OpenXR runtime, else a display for a desktop window, else headless."""
from __future__ import annotations

import os


def openxr_runtime_available() -> bool:
    # probing is expected to fail without a headset: keep the OpenXR loader's own error lines out of the way
    os.environ.setdefault("XR_LOADER_DEBUG", "none")
    try:
        import xr

        xr.enumerate_instance_extension_properties()
        return True
    except Exception:  # no loader, no runtime, no active runtime manifest
        return False


def detect_host() -> str:
    if openxr_runtime_available():
        return "openxr"
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt":
        return "desktop"
    return "headless"
