"""Hosts: where the scene is shown (headless EGL, desktop window, OpenXR headset)."""
