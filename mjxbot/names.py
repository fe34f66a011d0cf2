"""Name -> id lookups in a MuJoCo model: one helper, one error type, one message form.

A name that a config or a task refers to and the model lacks is a `ModelError`
whose one line lists the names the model does have, e.g.
`robot.feet: body 'l_foot' not in the model; its bodies are: pelvis, l_sole, r_sole`.
"""

from __future__ import annotations

import mujoco

from mjxbot.errors import ModelError

_KEY = mujoco.mjtObj.mjOBJ_KEY
# kind -> (MjModel count attribute, singular, plural, first listed id); body 0 is the world.
_KINDS = {
    mujoco.mjtObj.mjOBJ_BODY: ("nbody", "body", "bodies", 1),
    mujoco.mjtObj.mjOBJ_JOINT: ("njnt", "joint", "joints", 0),
    mujoco.mjtObj.mjOBJ_GEOM: ("ngeom", "geom", "geoms", 0),
    mujoco.mjtObj.mjOBJ_SITE: ("nsite", "site", "sites", 0),
    mujoco.mjtObj.mjOBJ_ACTUATOR: ("nu", "actuator", "actuators", 0),
    mujoco.mjtObj.mjOBJ_EQUALITY: ("neq", "equality", "equalities", 0),
    _KEY: ("nkey", "keyframe", "keyframes", 0),
}


def valid_names(model: mujoco.MjModel, kind: mujoco.mjtObj) -> str:
    """The model's entries of `kind` for an error message, comma-separated, or `(none)`.

    Unnamed entries are left out, except keyframes: `robot.home_key` may also
    pick one by index, so each keyframe is listed with its number (`home (#0), #1`).
    """
    count, _, _, first = _KINDS[kind]
    listed = []
    for i in range(first, getattr(model, count)):
        name = mujoco.mj_id2name(model, kind, i)
        if kind == _KEY:
            listed.append(f"{name} (#{i})" if name else f"#{i}")
        elif name:
            listed.append(name)
    return ", ".join(listed) or "(none)"


def lookup_id(
    model: mujoco.MjModel, kind: mujoco.mjtObj, name: str, what: str, hint: str = ""
) -> int:
    """The id of the `kind` entry called `name`.

    Args:
      model: the compiled MuJoCo model.
      kind: `mujoco.mjtObj.mjOBJ_BODY`, `..._SITE`, `..._GEOM`, `..._JOINT`,
        `..._ACTUATOR`, `..._EQUALITY` or `..._KEY`.
      name: the name to look up.
      what: who asks (a config key such as `robot.feet`, or a task), the
        message's prefix.
      hint: appended to the message (what else the user may do).

    Raises:
      ModelError: the model has no such entry; the message lists those it has.
    """
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        _, singular, plural, _ = _KINDS[kind]
        raise ModelError(
            f"{what}: {singular} {name!r} not in the model; its {plural} are: "
            f"{valid_names(model, kind)}{hint}"
        )
    return i


def lookup_ids(
    model: mujoco.MjModel, kind: mujoco.mjtObj, names: tuple[str, ...] | list[str], what: str
) -> list[int]:
    """`lookup_id` of each of `names`, in order."""
    return [lookup_id(model, kind, name, what) for name in names]
