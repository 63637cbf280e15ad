"""Learning-rate schedules as pure functions of the step, so resume needs only the step.

Each schedule returns the multiplier of the base learning rate at `step` (0-based) out of
`total_steps`, after `warmup_steps` of linear warmup from 0.
"""

from __future__ import annotations

import math
from typing import Literal

ScheduleName = Literal["constant", "linear", "cosine", "inverse_sqrt"]


def lr_multiplier(
    schedule: ScheduleName, step: int, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0
) -> float:
    """Multiplier in [min_ratio, 1] for the learning rate at `step`.

    - constant: 1 after warmup.
    - linear: word2vec's decay, from 1 down to `min_ratio` at the last step.
    - cosine: half-cosine from 1 down to `min_ratio`.
    - inverse_sqrt: the Transformer schedule, sqrt(warmup / step) after warmup.

    >>> lr_multiplier("linear", 0, 100), round(lr_multiplier("linear", 100, 100, min_ratio=0.01), 4)
    (1.0, 0.01)
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "inverse_sqrt":
        return math.sqrt(max(warmup_steps, 1) / max(step + 1, 1))
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    if schedule == "linear":
        return 1.0 - (1.0 - min_ratio) * progress
    if schedule == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}")
