"""What a task's step metrics mean: declared by the task, read by evaluation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class TaskMetrics:
    """The meaning of each metric a task's `advance_task` returns, one scalar per step.

    Evaluation judges episodes by these roles, never by metric-name patterns.

    Attributes:
      success: 0/1 at the step that ends an episode; None: success = not failed.
      sides: per-side success metrics, e.g. `{"left": "success/left"}`.
      falls: 0/1 per step, 1 when the robot fell; None: failures count as falls.
      cycle_time: seconds from cycle start to success, at the episode's last step.
      pushes_survived: pushes judged survived at this step (a count).
      max_impulse: running per-episode largest survived impulse (N s).
      other: logged metrics with no role in evaluation.
    """

    success: str | None = None
    sides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    falls: str | None = None
    cycle_time: str | None = None
    pushes_survived: str | None = None
    max_impulse: str | None = None
    other: tuple[str, ...] = ()

    @property
    def judged(self) -> tuple[str, ...]:
        """The metrics evaluation reads, each once."""
        roles = (self.success, self.falls, self.cycle_time, self.pushes_survived, self.max_impulse)
        return tuple(n for n in (*roles, *self.sides.values()) if n is not None)

    @property
    def names(self) -> tuple[str, ...]:
        """Every metric the task returns: `judged` then `other`."""
        return (*self.judged, *self.other)
