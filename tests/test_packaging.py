"""The wheel ships `envs/` as `mjxbot.envs` and no generic top-level `envs` module."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_every_package_and_the_assets(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("mjxbot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mjxbot/envs/assets/humanoid.xml" in names
    assert not any(n.startswith("envs/") for n in names), "a top-level envs package leaked"
    packages = [p.parent.relative_to(ROOT) for p in (ROOT / "mjxbot").rglob("__init__.py")]
    for package in packages:
        assert f"{package.as_posix()}/__init__.py" in names, f"{package} missing from the wheel"

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import mjxbot; from mjxbot.robot import "
        "resolve_mjcf; print(mjxbot.__file__); print(resolve_mjcf('humanoid.xml'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(target)], check=True, capture_output=True, text=True
    ).stdout.split("\n")[-3:-1]  # mujoco.mjx may print a line about warp before these
    assert out[0].startswith(str(target)) and out[1].startswith(str(target))
