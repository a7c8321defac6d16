"""The OpenXR host's runtime-free parts. A real OpenXR runtime cannot exist on this machine (no headset),
so these sequences stand in for the events a runtime would send."""
from __future__ import annotations

import math

import numpy as np
import pytest

from airquill.vr_client.hosts.xr_logic import (GL_RGBA8, GL_RGBA16F, GL_SRGB8_ALPHA8, Action, SessionLifecycle,
                                               XrState, choose_swapchain_format)
from airquill.vr_client.render.math3d import fov_projection, perspective, view_from_pose


def test_swapchain_format_prefers_srgb():
    assert choose_swapchain_format([GL_RGBA16F, GL_RGBA8, GL_SRGB8_ALPHA8]) == (GL_SRGB8_ALPHA8, True)
    assert choose_swapchain_format([GL_RGBA16F, GL_RGBA8]) == (GL_RGBA8, False)
    with pytest.raises(RuntimeError, match="no colour format"):
        choose_swapchain_format([0x1234])


def test_normal_session_lifecycle():
    life = SessionLifecycle()
    actions = []
    for state in (XrState.IDLE, XrState.READY, XrState.SYNCHRONIZED, XrState.VISIBLE, XrState.FOCUSED):
        actions += life.on_state(state)
    assert actions == [Action.BEGIN_SESSION] and life.running and life.focused and life.visible
    actions = []
    for state in (XrState.VISIBLE, XrState.SYNCHRONIZED, XrState.STOPPING, XrState.IDLE, XrState.EXITING):
        actions += life.on_state(state)
    assert actions == [Action.END_SESSION, Action.EXIT] and not life.running and life.exit_requested


def test_headset_removed_and_put_back_on():
    life = SessionLifecycle()
    for state in (XrState.READY, XrState.SYNCHRONIZED, XrState.VISIBLE, XrState.FOCUSED):
        life.on_state(state)
    assert life.on_state(XrState.VISIBLE) == [] and life.visible and not life.focused
    assert life.on_state(XrState.SYNCHRONIZED) == [] and not life.visible and life.running
    assert life.on_state(XrState.VISIBLE) == [] and life.visible


def test_loss_pending_ends_a_running_session_then_exits():
    life = SessionLifecycle()
    life.on_state(XrState.READY)
    assert life.on_state(XrState.LOSS_PENDING) == [Action.END_SESSION, Action.EXIT]
    assert life.on_instance_loss() == [Action.EXIT]


def test_pose_to_view_and_fov_projection():
    # an eye 1.6 m up, turned 90° left (about +y): world -x is straight ahead
    half = math.sqrt(0.5)
    view = view_from_pose((0.0, 1.6, 0.0), (0.0, half, 0.0, half))
    ahead = view @ np.array([-2.0, 1.6, 0.0, 1.0])
    np.testing.assert_allclose(ahead[:3], [0.0, 0.0, -2.0], atol=1e-9)
    # a symmetric OpenXR fov equals the usual perspective matrix
    fov = math.radians(45)
    np.testing.assert_allclose(fov_projection(-fov, fov, fov, -fov), perspective(90, 1.0), atol=1e-9)
    # an asymmetric one shifts the centre of projection
    p = fov_projection(math.radians(-50), math.radians(40), math.radians(45), math.radians(-45))
    assert p[0, 2] < 0


def test_egl_binding_describes_the_current_context():
    """The XR_MNDX_egl_enable binding is built from a real (Mesa) EGL context; only a runtime could consume it."""
    import moderngl
    import xr

    from airquill.vr_client.hosts.openxr_host import egl_binding

    ctx = moderngl.create_standalone_context(backend="egl")
    try:
        binding = egl_binding(xr)
        assert binding.display and binding.config and binding.context and binding.get_proc_address
        assert binding.type == xr.StructureType.GRAPHICS_BINDING_EGL_MNDX
    finally:
        ctx.release()
