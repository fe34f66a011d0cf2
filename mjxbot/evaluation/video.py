"""Videos of evaluated envs: `mujoco.Renderer` on the C model, poses from a `Runner` trace.

MuJoCo picks its GL backend from `MUJOCO_GL` when `mujoco` is first
imported, which importing `mjxbot` does: `eval.py` chooses the backend
(`setup_gl`) before that. Without a GL context or an encoder the video is
skipped with the reason, and everything else is still produced.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mjxbot.evaluation.plan import Plan

# Height (m) the video camera looks at: mid-body, so head and soles both show.
LOOKAT_HEIGHT = 0.7
# Close enough to see the feet step: the whole 1.5 m robot, soles included, fills
# the tile's height (MuJoCo's 45 degree vertical field of view).
CAMERA = {"distance": 2.3, "azimuth": 135.0, "elevation": -10.0}
# A task's MJCF may define a fixed camera of this name to film its work area instead (from
# the tracking camera the nut station's 13 mm nuts are a few pixels wide).
CLOSEUP_CAMERA = "closeup"


def _grid(n: int) -> tuple[int, int]:
    """`(rows, cols)` of the most square grid of `n` tiles."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _scene_model(mj_model, tile_w: int, tile_h: int):
    """A copy of `mj_model` with an offscreen buffer of the tile's size and a brighter
    headlight (the scene's one overhead light leaves the robot's sides dark at this angle)."""
    model = copy.copy(mj_model)
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, tile_w)
    model.vis.global_.offheight = max(model.vis.global_.offheight, tile_h)
    model.vis.headlight.ambient[:] = 0.45
    model.vis.headlight.diffuse[:] = 0.55
    return model


def _renderer(model, tile_h: int, tile_w: int, backend: str) -> tuple[Any, str | None]:
    """`(renderer, None)`, or `(None, why)` when no GL context can be made."""
    import mujoco

    try:
        return mujoco.Renderer(model, tile_h, tile_w), None
    except Exception as e:  # noqa: BLE001 - GL backends fail with many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        hint = (
            "install Debian's libosmesa6 and set MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa"
            if backend == "osmesa"
            else "use a GPU node with EGL (MUJOCO_GL=egl), or OSMesa on a CPU machine"
        )
        return None, (
            f"no OpenGL context with MUJOCO_GL={backend} ({type(e).__name__}: {first}); {hint}"
        )


def video_camera(model):
    """The model's fixed `CLOSEUP_CAMERA` if it has one, else the free camera that
    `_Tiler.frame` points at each env's robot."""
    import mujoco

    camera = mujoco.MjvCamera()
    closeup = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CLOSEUP_CAMERA)
    if closeup >= 0:
        camera.type, camera.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, closeup
        return camera
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.azimuth, camera.elevation = CAMERA.values()
    return camera


class _Tiler:
    """Draws one step of every traced env into its tile of a `[height, width, 3]` frame."""

    def __init__(self, renderer, model, envs: int, width: int, height: int):
        import mujoco

        self.renderer, self.model = renderer, model
        self.data, self.camera = mujoco.MjData(model), video_camera(model)
        self.tracking = self.camera.type == mujoco.mjtCamera.mjCAMERA_FREE
        self.rows, self.cols = _grid(envs)
        self.envs, self.width, self.height = envs, width, height

    def frame(self, trace: dict[str, np.ndarray], t: int) -> np.ndarray:
        import mujoco

        qpos, data = trace["qpos"], self.data
        tile_h, tile_w = self.height // self.rows, self.width // self.cols
        frame = np.zeros((self.height, self.width, 3), np.uint8)
        for e in range(self.envs):
            data.qpos[:] = qpos[t, e]
            if "mocap_pos" in trace:
                data.mocap_pos[:] = trace["mocap_pos"][t, e]
                data.mocap_quat[:] = trace["mocap_quat"][t, e]
            mujoco.mj_kinematics(self.model, data)
            if self.tracking:
                self.camera.lookat[:] = [qpos[t, e, 0], qpos[t, e, 1], LOOKAT_HEIGHT]
            else:  # the model camera's pose (mj_kinematics leaves it stale)
                mujoco.mj_comPos(self.model, data)
                mujoco.mj_camlight(self.model, data)
            self.renderer.update_scene(data, camera=self.camera)
            r, c = divmod(e, self.cols)
            tile = frame[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w]
            tile[:] = self.renderer.render()
        return frame


def render_video(
    mj_model,
    trace: dict[str, np.ndarray],
    path: Path,
    frames: int,
    width: int,
    height: int,
    fps: float,
    backend: str,
) -> dict[str, Any]:
    """Renders the first `frames` steps of the traced envs, tiled, into an mp4.

    Args:
      mj_model: the MuJoCo C model of the env (copied, not modified).
      trace: `qpos` `[T, V, nq]` (and `mocap_pos` / `mocap_quat` `[T, V, nmocap, ...]`)
        from a `Runner` with `video_envs=V`.
      path: the `.mp4` to write.
      frames, width, height: the video's frame count and size (even sizes).
      fps: frames per second (one frame per control step: `1 / ctrl_dt`).
      backend: the `MUJOCO_GL` in use, reported in the result.

    Returns:
      `{"path", "frames", "width", "height", "envs", "backend"}`, or
      `{"skipped": reason, "backend"}` when no GL context or encoder is there.
    """
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - the mp4 encoder of imageio's ffmpeg plugin
    except ImportError as e:
        why = f"{e.name} is not installed (pip install imageio imageio-ffmpeg)"
        return {"skipped": why, "backend": backend}
    trace = {k: v[:frames] for k, v in trace.items()}
    steps, envs = trace["qpos"].shape[:2]
    rows, cols = _grid(envs)
    model = _scene_model(mj_model, width // cols, height // rows)
    renderer, why = _renderer(model, height // rows, width // cols, backend)
    if renderer is None:
        return {"skipped": why, "backend": backend}
    writer = imageio.get_writer(
        str(path), fps=fps, codec="libx264", macro_block_size=1, quality=7, ffmpeg_log_level="error"
    )
    with warnings.catch_warnings():
        # imageio-ffmpeg starts ffmpeg with a fork that execs at once (no JAX state touched).
        warnings.filterwarnings("ignore", message=r"os\.fork\(\)", category=RuntimeWarning)
        try:
            tiler = _Tiler(renderer, model, envs, width, height)
            for t in range(steps):
                writer.append_data(tiler.frame(trace, t))
        finally:
            writer.close()
            renderer.close()
    return {
        "path": str(path),
        "frames": int(steps),
        "width": width,
        "height": height,
        "envs": int(envs),
        "backend": backend,
    }


def eval_video(
    plan: Plan,
    trace: dict[str, np.ndarray],
    path: str | None,
    frames: int,
    size: tuple[int, int],
    gl: tuple[str | None, str | None],
    log=print,
) -> dict[str, Any]:
    """The report's `video`: `render_video` of the policy's traced envs, or why not.

    Args:
      plan: the evaluation's setup (notes receive a skipped video's reason).
      trace: the policy's traced poses (`Episodes.video`).
      path: the `.mp4` to write; None when no video was asked for.
      frames: frames to render.
      size: `(width, height)`.
      gl: `(backend, None)` or `(None, why)` from `eval.py`'s `setup_gl`.
      log: progress messages.
    """
    backend, no_gl = gl
    if path is None:
        return {"skipped": "no --video given", "backend": backend}
    if backend is None:
        plan.notes.append(f"video: skipped: {no_gl}")
        return {"skipped": no_gl, "backend": None}
    envs = trace["qpos"].shape[1]
    log(
        f"[eval] rendering {frames} frames of {envs} env(s) at {size[0]}x{size[1]} "
        f"with MUJOCO_GL={backend}"
    )
    model = plan.main_env.mj_model
    video = render_video(model, trace, Path(path), frames, *size, 1.0 / plan.dt, backend)
    if "skipped" in video:
        plan.notes.append(f"video: skipped: {video['skipped']}")
    return video
