"""mjxbot's tasks and MJCF assets (installed as `mjxbot.envs`).

`BUILTIN` is what `mjxbot.ALL_ENVS` starts with; `mjxbot.register` adds more.
"""

from mjxbot.env import HumanoidEnv
from mjxbot.envs.balance import Balance
from mjxbot.envs.nut_station import NutStation
from mjxbot.envs.reach import Reach
from mjxbot.envs.stand import Stand

BUILTIN: dict[str, type[HumanoidEnv]] = {
    "balance": Balance,
    "nut_station": NutStation,
    "reach": Reach,
    "stand": Stand,
}

__all__ = ["BUILTIN"]
