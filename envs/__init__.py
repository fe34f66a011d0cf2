"""mjxbot's tasks and MJCF assets (installed as `mjxbot.envs`).

Importing this package registers every task in `mjxbot.ALL_ENVS`.
"""

from mjxbot.envs import balance, nut_station, reach, stand

__all__ = ["balance", "nut_station", "reach", "stand"]
