"""Small camera maths for hosts and tests (numpy, column vectors, OpenGL clip conventions)."""
from __future__ import annotations

import math

import numpy as np


def perspective(fov_y_deg: float, aspect: float, near: float = 0.05, far: float = 100.0) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def fov_projection(left: float, right: float, up: float, down: float, near: float = 0.05,
                   far: float = 100.0) -> np.ndarray:
    """An asymmetric frustum from OpenXR-style field-of-view angles (radians; left and down negative)."""
    l, r, u, d = math.tan(left), math.tan(right), math.tan(up), math.tan(down)
    m = np.zeros((4, 4))
    m[0, 0], m[0, 2] = 2 / (r - l), (r + l) / (r - l)
    m[1, 1], m[1, 2] = 2 / (u - d), (u + d) / (u - d)
    m[2, 2], m[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
    m[3, 2] = -1.0
    return m


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix (3x3) of a unit quaternion."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def view_from_pose(position, orientation_xyzw) -> np.ndarray:
    """The view matrix (world -> eye) of an eye at `position` with `orientation` (as OpenXR poses give)."""
    rotation = quaternion_matrix(*orientation_xyzw)
    m = np.eye(4)
    m[:3, :3] = rotation.T
    m[:3, 3] = -rotation.T @ np.asarray(position, dtype=float)
    return m


def look_at(eye, target, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = right, true_up, -forward
    m[:3, 3] = -m[:3, :3] @ eye
    return m
