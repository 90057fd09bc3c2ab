"""What the batch tests share: a restorer's result, made without networks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FakeResult:
    """What the batch reads of a restorer's result (``oldphoto.pipeline``'s): the image, the repaired mask,
    faces and models; ``path`` (``quality``, ``scratch``, ``hr``), ``fidelity`` and ``defects`` make the
    report's ``restoration`` (None: no path, no restoration recorded)."""

    image: np.ndarray
    mask: np.ndarray | None = None
    faces: list = field(default_factory=list)
    models: dict = field(default_factory=lambda: {"fake": "invert"})
    path: str | None = None
    fidelity: float | None = None
    defects: object = None
