"""XR_EXT_hand_tracking for the OpenXR host: two hand trackers and their joints each frame.

pyopenxr's `locate_hand_joints_ext` passes the runtime a `XrHandJointLocationsEXT` without a joint array,
which the spec (XR_EXT_hand_tracking, xrLocateHandJointsEXT) does not allow: the application owns an array of
XR_HAND_JOINT_COUNT_EXT locations. So the call is made here through the function pointer with our own array.
Like the rest of the OpenXR host this cannot run in CI (no runtime); `xr_logic.hand_events` turns its output
into input events and is tested there.
"""
from __future__ import annotations

import ctypes

import numpy as np

# a joint is usable when the runtime reports its position as valid (XrSpaceLocationFlags)
POSITION_VALID = 0x00000002


class XrHands:
    def __init__(self, xr, session, space):
        self.xr, self.space = xr, space
        self.trackers = {
            "left": xr.create_hand_tracker_ext(session, xr.HandTrackerCreateInfoEXT(hand=xr.HandEXT.LEFT)),
            "right": xr.create_hand_tracker_ext(session, xr.HandTrackerCreateInfoEXT(hand=xr.HandEXT.RIGHT)),
        }
        self._locate = ctypes.cast(xr.get_instance_proc_addr(session.instance, "xrLocateHandJointsEXT"),
                                   xr.PFN_xrLocateHandJointsEXT)
        self._joints = {hand: (xr.HandJointLocationEXT * xr.HAND_JOINT_COUNT_EXT)() for hand in self.trackers}

    def locate(self, display_time: int) -> dict[str, np.ndarray | None]:
        """Joint positions (26, 3) in the reference space for each hand the runtime tracks now, else None."""
        xr = self.xr
        info = xr.HandJointsLocateInfoEXT(base_space=self.space, time=display_time)
        out: dict[str, np.ndarray | None] = {}
        for hand, tracker in self.trackers.items():
            array = self._joints[hand]
            locations = xr.HandJointLocationsEXT()
            locations.joint_count = xr.HAND_JOINT_COUNT_EXT
            locations._joint_locations = ctypes.cast(array, ctypes.POINTER(xr.HandJointLocationEXT))
            result = xr.check_result(self._locate(tracker, ctypes.byref(info), ctypes.byref(locations)))
            if result.is_exception():
                raise result
            if not locations.is_active or any(not (j._location_flags & POSITION_VALID) for j in array):
                out[hand] = None
                continue
            out[hand] = np.array([[j.pose.position.x, j.pose.position.y, j.pose.position.z] for j in array])
        return out

    def close(self) -> None:
        for tracker in self.trackers.values():
            self.xr.destroy_hand_tracker_ext(tracker)
        self.trackers = {}
