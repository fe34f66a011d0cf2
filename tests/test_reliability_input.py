"""Bad input: wrong configs (fuzzed), binary files, bad robot models (README, "Guarantees
under faults"). Each is one `error:` line and exit code 2, never a traceback.

Config fuzzing and the error paths run in-process and stop before any compile;
one subprocess checks the real process's exit code.
"""

from __future__ import annotations

import contextlib
import io
import math
import typing
from pathlib import Path

import pytest
import yaml
from conftest import MINI_BIPED, ROOT, TINY, assert_cli_error, assert_one_line_error, run_train
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mjxbot.errors import run_cli
from mjxbot.training import config as tconfig
from mjxbot.training.schema import TrainConfig

# ------------------------------------------------------------ config fuzzing

SECTIONS = {"ppo", "network", "logging", "checkpoint", "eval"}
FIELD_TYPES = {
    f"{section}.{name}": tp
    for section in SECTIONS
    for name, tp in typing.get_type_hints(type(getattr(TrainConfig(), section))).items()
    if tp in (int, float, bool, str)
}
OUT_OF_RANGE = {
    "ppo.num_envs": st.integers(max_value=-1),
    "ppo.num_timesteps": st.integers(max_value=-1),
    "ppo.unroll_length": st.integers(max_value=0),
    "ppo.num_minibatches": st.integers(max_value=0),
    "ppo.num_updates_per_batch": st.integers(max_value=0),
    "ppo.learning_rate": st.floats(max_value=0.0) | st.floats(min_value=1.0, exclude_min=True),
    "ppo.discounting": st.floats(min_value=1.0, exclude_min=True) | st.floats(max_value=-1e-9),
    "ppo.gae_lambda": st.floats(min_value=1.0, exclude_min=True),
    "ppo.entropy_cost": st.floats(max_value=-1e-9),
    "ppo.clipping_epsilon": st.floats(max_value=-1e-9),
    "logging.log_every": st.integers(max_value=0),
    "checkpoint.max_to_keep": st.integers(max_value=0),
    "checkpoint.every_steps": st.integers(max_value=-1),
    "eval.num_envs": st.integers(max_value=-1),
    "network.policy_hidden_layer_sizes": st.lists(st.integers(max_value=0), min_size=1),
    "env.disturbances.curriculum": st.floats(min_value=1.0, exclude_min=True),
}
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)


def _wrong_type(tp: type) -> st.SearchStrategy:
    def wrong(v):
        if tp is float:
            return isinstance(v, bool) or not isinstance(v, int | float)
        return isinstance(v, bool) != (tp is bool) or not isinstance(v, tp)

    return SCALARS.filter(wrong)


def _nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


@st.composite
def wrong_configs(draw) -> bytes:
    """The bytes of a config file that must be rejected."""
    kind = draw(st.sampled_from(["unknown", "type", "range", "nonfinite", "empty", "garbage"]))
    if kind == "unknown":  # no field of any section starts with "zz"
        section = draw(st.sampled_from(["", *sorted(SECTIONS), "env", "env.disturbances"]))
        name = "zz" + draw(st.from_regex(r"[a-z_0-9]{0,10}", fullmatch=True))
        data = _nested(f"{section}.{name}" if section else name, draw(SCALARS))
    elif kind == "type":
        key = draw(st.sampled_from(sorted(FIELD_TYPES)))
        data = _nested(key, draw(_wrong_type(FIELD_TYPES[key])))
    elif kind == "range":
        key = draw(st.sampled_from(sorted(OUT_OF_RANGE)))
        data = _nested(key, draw(OUT_OF_RANGE[key]))
    elif kind == "nonfinite":
        key = draw(st.sampled_from([k for k, tp in FIELD_TYPES.items() if tp is float]))
        data = _nested(key, draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    elif kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"# only a comment\n", b"---\n", b"~\n"]))
    else:  # not YAML, or YAML that is not a mapping
        raw = draw(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
        try:
            parsed = yaml.safe_load(raw)
        except Exception:  # noqa: BLE001 - any parse failure is what we want
            return raw
        return raw if not isinstance(parsed, dict) else b"[" + raw
    return yaml.safe_dump(data).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=wrong_configs())
def test_fuzzed_wrong_configs_give_one_error_line(content, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "bad.yaml"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(tconfig.load, [ROOT / "configs" / "reach.yaml", path])
    lines = err.getvalue().splitlines()
    assert code == 2, (content, out.getvalue())
    assert len(lines) == 1 and lines[0].startswith("error: "), (content, lines)


def test_binary_config_file_exits_2_without_traceback(cache, tmp_path):
    # The fuzz test above runs in-process; this checks the real process's exit code.
    (tmp_path / "bad.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    proc = run_train(cache, *TINY, "--config", str(tmp_path / "bad.yaml"))
    assert_one_line_error(proc, "not a text file")


@pytest.mark.parametrize(
    "override, expected",
    [("env.sim_dt=0", "multiple of sim_dt"), ("env.episode_length=0", "episode_length")],
)
def test_env_level_config_errors_are_one_line(tmp_path, override, expected):
    assert_cli_error([*TINY, "--set", override, "--run-dir", str(tmp_path / "r")], expected)


# ---------------------------------------------------------------- model input


def _robot_yaml(tmp_path: Path, mjcf: Path, **robot) -> str:
    data = {
        "env_name": "stand",
        "env": {
            "robot": {
                "mjcf": str(mjcf),
                "torso_body": "pelvis",
                "feet": ["l_sole", "r_sole"],
                "hands": [],
                "gains": {"hip": [80.0, 3.0], "ankle": [40.0, 2.0]},
                **robot,
            }
        },
    }
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda x: x.replace("</worldbody>", ""), "cannot load MJCF"),
        (
            lambda x: x.replace('<freejoint name="float"/>', "").replace(
                'qpos="0 0 0.52 1 0 0 0 ', 'qpos="'
            ),
            "no free joint",
        ),
        (
            lambda x: x.replace('timestep="0.004"', 'timestep="0.004" integrator="implicit"'),
            "feature MJX (jax) does not support: mjtIntegrator.mjINT_IMPLICIT",
        ),
    ],
    ids=["malformed", "no_floating_base", "unsupported_by_mjx"],
)
def test_bad_robot_models_name_the_problem(tmp_path, edit, expected):
    mjcf = tmp_path / "robot.xml"
    text = edit(MINI_BIPED.read_text())
    assert text != MINI_BIPED.read_text()
    mjcf.write_text(text)
    config = _robot_yaml(tmp_path, mjcf)
    args = ["--config", config, "--config", "configs/ci.yaml", "--run-dir", str(tmp_path / "r")]
    assert_cli_error(args, expected)
