"""The OpenXR host (pyopenxr, OpenGL graphics binding): stereo frames into the runtime's swapchains.

Thin on purpose: it creates the instance, session, reference space and one swapchain per view, follows the
session lifecycle (`xr_logic.SessionLifecycle`), and for each frame locates the views at the predicted
display time and asks the scene to draw each eye. Windows (WGL, a Quest through Link or SteamVR) is the main
target; Linux uses GLX. Nothing here runs in CI: there is no runtime on a machine without a headset.
"""
from __future__ import annotations

import ctypes
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from airquill.vr_client.hosts.xr_logic import (Action, SessionLifecycle, XrState, choose_swapchain_format,
                                                 hand_events)
from airquill.vr_client.render.math3d import fov_projection, view_from_pose
from airquill.vr_client.scene import EYE_HEIGHT, Scene

NO_RUNTIME = ("No OpenXR runtime was found. Install and start one — SteamVR, the Meta Quest app (for a Quest "
              "through Link) or Monado — and make it the active OpenXR runtime. Without a headset, "
              "`airquill desktop` shows the same scene in a window.")


class NoRuntime(RuntimeError):
    pass


@dataclass
class EyeSwapchain:
    handle: object
    width: int
    height: int
    framebuffers: list  # one moderngl framebuffer per swapchain image


def _graphics_binding(xr):
    """The OpenGL binding for the current context (created by glfw) on this platform."""
    if sys.platform == "win32":
        wgl = ctypes.WinDLL("opengl32")
        wgl.wglGetCurrentDC.restype = ctypes.c_void_p
        wgl.wglGetCurrentContext.restype = ctypes.c_void_p
        return xr.GraphicsBindingOpenGLWin32KHR(h_dc=wgl.wglGetCurrentDC(), h_glrc=wgl.wglGetCurrentContext())
    # GLX: XrGraphicsBindingOpenGLXlibKHR must carry a valid GLXFBConfig (conforming runtimes reject NULL):
    # ask the current context for its FBConfig id and look the config up.
    glx = ctypes.CDLL("libGL.so.1")
    for name in ("glXGetCurrentDisplay", "glXGetCurrentContext", "glXGetCurrentDrawable"):
        getattr(glx, name).restype = ctypes.c_void_p
    display, context = glx.glXGetCurrentDisplay(), glx.glXGetCurrentContext()
    drawable = glx.glXGetCurrentDrawable()
    if not display or not context:
        raise RuntimeError("no current GLX context (is DISPLAY set, and is this an X11 session?)")
    GLX_FBCONFIG_ID, GLX_SCREEN = 0x8013, 0x800C
    fb_id, screen = ctypes.c_int(), ctypes.c_int()
    glx.glXQueryContext(ctypes.c_void_p(display), ctypes.c_void_p(context), GLX_FBCONFIG_ID, ctypes.byref(fb_id))
    glx.glXQueryContext(ctypes.c_void_p(display), ctypes.c_void_p(context), GLX_SCREEN, ctypes.byref(screen))
    attributes = (ctypes.c_int * 3)(GLX_FBCONFIG_ID, fb_id.value, 0)
    count = ctypes.c_int()
    glx.glXChooseFBConfig.restype = ctypes.POINTER(ctypes.c_void_p)
    configs = glx.glXChooseFBConfig(ctypes.c_void_p(display), screen.value, attributes, ctypes.byref(count))
    if not configs or count.value < 1:
        raise RuntimeError("could not find the GLXFBConfig of the current context")
    fbconfig = configs[0]
    glx.glXGetVisualFromFBConfig.restype = ctypes.c_void_p
    visual_info = glx.glXGetVisualFromFBConfig(ctypes.c_void_p(display), ctypes.c_void_p(fbconfig))
    visualid = ctypes.cast(visual_info, ctypes.POINTER(ctypes.c_ulong))[1] if visual_info else 0  # XVisualInfo.visualid
    return xr.GraphicsBindingOpenGLXlibKHR(x_display=display, visualid=visualid, glx_fbconfig=fbconfig,
                                           glx_drawable=drawable, glx_context=context)


def egl_binding(xr):
    """XR_MNDX_egl_enable: the binding for the current EGL context (Linux, e.g. Monado), no window needed."""
    from OpenGL import EGL

    display, context = EGL.eglGetCurrentDisplay(), EGL.eglGetCurrentContext()
    if not display or context == EGL.EGL_NO_CONTEXT:
        raise RuntimeError("no current EGL context")
    config_id = ctypes.c_int()
    EGL.eglQueryContext(display, context, EGL.EGL_CONFIG_ID, ctypes.byref(config_id))
    config = EGL.EGLConfig()
    count = ctypes.c_int()
    attributes = (ctypes.c_int * 3)(EGL.EGL_CONFIG_ID, config_id.value, EGL.EGL_NONE)
    if not EGL.eglChooseConfig(display, attributes, ctypes.byref(config), 1, ctypes.byref(count)) or count.value < 1:
        raise RuntimeError("could not find the EGLConfig of the current context")
    field_type = dict(xr.GraphicsBindingEGLMNDX._fields_)["get_proc_address"]
    get_proc_address = ctypes.cast(ctypes.CDLL("libEGL.so.1").eglGetProcAddress, field_type)
    return xr.GraphicsBindingEGLMNDX(get_proc_address=get_proc_address, display=display, config=config,
                                     context=context)


class OpenXRHost:
    def __init__(self, *, app_name: str = "airquill"):
        try:
            import xr
        except ImportError as err:
            raise NoRuntime(f"pyopenxr is not installed ({err}); pip install pyopenxr") from err
        self.xr = xr
        try:
            available = {e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
                         for e in xr.enumerate_instance_extension_properties()}
            # on Linux prefer EGL where the runtime offers it (no X window needed), else GLX
            self.use_egl = sys.platform.startswith("linux") and xr.MNDX_EGL_ENABLE_EXTENSION_NAME in available
            extensions = [xr.KHR_OPENGL_ENABLE_EXTENSION_NAME]
            if self.use_egl:
                extensions.append(xr.MNDX_EGL_ENABLE_EXTENSION_NAME)
            # bare hands (a Quest through Link offers them): joints instead of the webcam, same gestures
            self.hand_tracking = xr.EXT_HAND_TRACKING_EXTENSION_NAME in available
            if self.hand_tracking:
                extensions.append(xr.EXT_HAND_TRACKING_EXTENSION_NAME)
            self.instance = xr.create_instance(xr.InstanceCreateInfo(
                application_info=xr.ApplicationInfo(application_name=app_name, engine_name="airquill"),
                enabled_extension_names=extensions,
            ))
            self.system = xr.get_system(self.instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        except Exception as err:  # loader without runtime, runtime without headset, ...
            raise NoRuntime(f"{NO_RUNTIME} ({type(err).__name__}: {err})") from err
        self.lifecycle = SessionLifecycle()
        self.session = self.space = None
        self.swapchains: list[EyeSwapchain] = []
        self.srgb = False
        self.renderer = None  # made with the GL context when the session starts
        self.inputs: queue.Queue = queue.Queue()  # hand-tracking events for the controller
        self.hands = None
        self.head = np.array([0.0, EYE_HEIGHT, 0.0])  # scene position of the head, from the last views

    def _create_gl_context(self):
        import moderngl

        requirements = self.xr.get_opengl_graphics_requirements_khr(self.instance, self.system)
        if self.use_egl:
            self.ctx = moderngl.create_standalone_context(backend="egl", require=450)
            return
        import glfw

        if not glfw.init():
            raise RuntimeError("glfw could not initialise (no display?)")
        major = max(4, (requirements.min_api_version_supported >> 48) & 0xFFFF)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, major)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 5 if major == 4 else 0)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
        glfw.window_hint(glfw.DOUBLEBUFFER, glfw.FALSE)
        self.window = glfw.create_window(64, 64, "airquill (OpenXR)", None, None)
        glfw.make_context_current(self.window)
        self.ctx = moderngl.create_context(require=450)

    def _create_session(self) -> None:
        xr = self.xr
        binding = egl_binding(xr) if self.use_egl else _graphics_binding(xr)
        self.session = xr.create_session(self.instance, xr.SessionCreateInfo(
            system_id=self.system, next=ctypes.cast(ctypes.pointer(binding), ctypes.c_void_p)))
        self._binding = binding  # keep alive
        spaces = xr.enumerate_reference_spaces(self.session)
        kind = xr.ReferenceSpaceType.STAGE if xr.ReferenceSpaceType.STAGE in spaces else xr.ReferenceSpaceType.LOCAL
        # the scene stands on the floor (y = 0); a LOCAL space has its origin at the head instead
        self.floor_to_space = np.eye(4)
        if kind != xr.ReferenceSpaceType.STAGE:
            self.floor_to_space[1, 3] = -EYE_HEIGHT
        self.space = xr.create_reference_space(self.session, xr.ReferenceSpaceCreateInfo(
            reference_space_type=kind, pose_in_reference_space=xr.Posef()))
        fmt, self.srgb = choose_swapchain_format(list(xr.enumerate_swapchain_formats(self.session)))
        views = xr.enumerate_view_configuration_views(self.instance, self.system,
                                                      xr.ViewConfigurationType.PRIMARY_STEREO)
        for view in views:
            width, height = view.recommended_image_rect_width, view.recommended_image_rect_height
            handle = xr.create_swapchain(self.session, xr.SwapchainCreateInfo(
                usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT | xr.SwapchainUsageFlags.SAMPLED_BIT,
                format=fmt, sample_count=1, width=width, height=height, face_count=1, array_size=1, mip_count=1))
            images = xr.enumerate_swapchain_images(handle, xr.SwapchainImageOpenGLKHR)
            depth = self.ctx.depth_renderbuffer((width, height))
            framebuffers = [self.ctx.framebuffer(
                color_attachments=[self.ctx.external_texture(image.image, (width, height), 4, 0, "f1")],
                depth_attachment=depth) for image in images]
            self.swapchains.append(EyeSwapchain(handle, width, height, framebuffers))

    def _poll_events(self) -> None:
        xr = self.xr
        while True:
            try:
                event = xr.poll_event(self.instance)
            except xr.EventUnavailable:
                return
            kind = xr.StructureType(event.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                self._apply(self.lifecycle.on_instance_loss())
            elif kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                changed = ctypes.cast(ctypes.byref(event), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                self._apply(self.lifecycle.on_state(XrState(int(changed.state))))

    def _apply(self, actions: list[Action]) -> None:
        xr = self.xr
        for action in actions:
            if action is Action.BEGIN_SESSION:
                xr.begin_session(self.session, xr.SessionBeginInfo(
                    primary_view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO))
            elif action is Action.END_SESSION:
                xr.end_session(self.session)

    def run(self, scene: Scene, *, before_frame: Callable[[float], None] = lambda t: None) -> None:
        """The frame loop, until the runtime asks the session to exit or Ctrl-C."""
        import moderngl

        xr = self.xr
        self._create_gl_context()
        self._create_session()
        from airquill.vr_client.render.text_renderer import TextRenderer

        renderer = self.renderer = TextRenderer(self.ctx, linear_output=self.srgb)
        recognizer = self._start_hand_tracking()
        first_time = None
        try:
            while not self.lifecycle.exit_requested:
                self._poll_events()
                if not self.lifecycle.running:
                    time.sleep(0.05)
                    continue
                frame_state = xr.wait_frame(self.session, xr.FrameWaitInfo())
                xr.begin_frame(self.session, xr.FrameBeginInfo())
                display_time = frame_state.predicted_display_time
                first_time = display_time if first_time is None else first_time
                seconds = (display_time - first_time) / 1e9  # the scene's clock: predicted display time
                if self.hands is not None:
                    joints = self.hands.locate(display_time)
                    for event in hand_events(joints, self.head, seconds, recognizer,
                                             np.linalg.inv(self.floor_to_space)):
                        self.inputs.put(event)
                before_frame(seconds)
                layers = []
                if frame_state.should_render:
                    layers = self._render_views(scene, renderer, display_time, seconds, moderngl)
                xr.end_frame(self.session, xr.FrameEndInfo(
                    display_time=display_time, environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
                    layers=layers))
        finally:
            self.close()

    def _start_hand_tracking(self):
        """Hand trackers when the runtime offers XR_EXT_hand_tracking; otherwise say so and go on."""
        from airquill.vr_client.input.events import InputUnavailable
        from airquill.vr_client.input.gestures import GestureRecognizer

        if not self.hand_tracking:
            self.inputs.put(InputUnavailable("hands", "this OpenXR runtime offers no XR_EXT_hand_tracking; "
                                                      "use controllers' rays, the webcam (--hands) or voice"))
            return None
        from airquill.vr_client.hosts.xr_hands import XrHands

        try:
            self.hands = XrHands(self.xr, self.session, self.space)
        except Exception as err:  # the extension is there but this system has no hand tracking
            self.inputs.put(InputUnavailable("hands", f"hand tracking could not start: {err}"))
            return None
        return GestureRecognizer()

    def _render_views(self, scene, renderer, display_time, seconds, moderngl) -> list:
        xr = self.xr
        _, views = xr.locate_views(self.session, xr.ViewLocateInfo(
            view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO, display_time=display_time,
            space=self.space))
        projection_views, heads = [], []
        for view, eye in zip(views, self.swapchains):
            index = xr.acquire_swapchain_image(eye.handle, xr.SwapchainImageAcquireInfo())
            xr.wait_swapchain_image(eye.handle, xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
            fbo = eye.framebuffers[index]
            fbo.use()
            if self.srgb:
                self.ctx.enable_direct(0x8DB9)  # GL_FRAMEBUFFER_SRGB: shaders write linear colour
            fbo.clear(0.01, 0.012, 0.02, 1.0, depth=1.0)
            p, o = view.pose.position, view.pose.orientation
            heads.append((p.x, p.y, p.z))
            renderer.render(scene, view_from_pose((p.x, p.y, p.z), (o.x, o.y, o.z, o.w)) @ self.floor_to_space,
                            fov_projection(view.fov.angle_left, view.fov.angle_right, view.fov.angle_up,
                                           view.fov.angle_down), seconds)
            xr.release_swapchain_image(eye.handle, xr.SwapchainImageReleaseInfo())
            projection_views.append(xr.CompositionLayerProjectionView(
                pose=view.pose, fov=view.fov,
                sub_image=xr.SwapchainSubImage(swapchain=eye.handle, image_rect=xr.Rect2Di(
                    offset=xr.Offset2Di(0, 0), extent=xr.Extent2Di(eye.width, eye.height)))))
        if heads:  # between the eyes, in scene coordinates (for the head-to-hand pinch rays)
            centre = np.append(np.mean(heads, axis=0), 1.0)
            self.head = (np.linalg.inv(self.floor_to_space) @ centre)[:3]
        self._layer = xr.CompositionLayerProjection(space=self.space, views=projection_views)
        return [ctypes.byref(self._layer)]

    def close(self) -> None:
        xr = self.xr
        if self.hands is not None:
            self.hands.close()
            self.hands = None
        for eye in self.swapchains:
            xr.destroy_swapchain(eye.handle)
        self.swapchains = []
        if self.space is not None:
            xr.destroy_space(self.space)
            self.space = None
        if self.session is not None:
            xr.destroy_session(self.session)
            self.session = None
        xr.destroy_instance(self.instance)

