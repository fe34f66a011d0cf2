#!/usr/bin/env bash
# Downloads what the lent GPU machine's image lacks to run benchmarks/gpu_check.py (docs/gpu.md):
#   1. wheels for CPython 3.12 on manylinux x86_64 into .gpu_wheels/, at the versions of
#      constraints.txt (what CI tests), plus setuptools, wheel and packaging to build mjxbot;
#   2. the EGL/OpenGL loader packages (Debian .debs) into .gl/, for MuJoCo's EGL rendering.
# Both folders are git-ignored; a device run carries them (64 MiB at most with the tree).
#
# The image has Python 3.12 with jax 0.11.2 and its CUDA 13 plugin, flax, optax,
# orbax-checkpoint, chex, matplotlib, rich, imageio, onnx and onnxruntime (with their own
# dependencies). WHEELS is what mjxbot's runtime dependencies (and osqp, for the QP
# comparison) add to that set. Left out: wandb (20 MB; W&B is off in the check and
# train.py runs without it) and imageio-ffmpeg (68 MB, more than a carry holds: the
# check's video is then skipped with that reason).
#
# Usage: bash benchmarks/fetch_gpu_wheels.sh [WHEEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu_wheels}
WHEELS=(
  mujoco mujoco-mjx brax tyro osqp
  # their dependencies that the image does not have
  blinker click cloudpickle docstring_parser flask flask-cors glfw itsdangerous jaxopt jinja2
  joblib markupsafe ml_collections pyopengl tensorboardx trimesh typeguard websockets werkzeug
)
LIMIT_MIB=60 # the carry's 64 MiB, less the working tree and the .debs

specs=()
for name in "${WHEELS[@]}"; do
  pattern="^${name//[-_]/[-_.]}=="
  line=$(grep -iE "$pattern" constraints.txt) || { echo "error: $name not in constraints.txt" >&2; exit 2; }
  specs+=("$line")
done
rm -rf "$dir" && mkdir -p "$dir"
python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dir" "${specs[@]}" "setuptools>=77" wheel packaging
size_mib=$(($(du -sb "$dir" | cut -f1) / 1048576))
echo "$dir: $(ls "$dir" | wc -l) wheels, ${size_mib} MiB"
if [ "$size_mib" -gt "$LIMIT_MIB" ]; then
  echo "error: $dir is over ${LIMIT_MIB} MiB" >&2
  exit 1
fi

# The loaders of the device library's recipe (its README): GLVND, EGL, OpenGL, Vulkan.
if command -v apt-get >/dev/null; then
  lists=/tmp/amd64-lists
  opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  mkdir -p .gl "$lists/partial"
  apt-get "${opts[@]}" update -qq
  (cd .gl && apt-get "${opts[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 \
    libglx0 libgles2)
  echo ".gl: $(ls .gl | wc -l) packages, $(du -sh .gl | cut -f1)"
else
  echo "no apt-get here: .gl not fetched (EGL may be missing on the device: the video skips)"
fi
