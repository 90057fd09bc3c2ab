"""The sizes ``--compat official`` resizes a photo to, as plain arithmetic without torch: the stages
(``oldphoto.stages.compat``) resize by them, and the batch's checks from a photo's header (too small, the
memory its detector pass needs) read them before anything is decoded."""

from __future__ import annotations


def official_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """``int(round(x / m) * m)`` per side (Python ``round``: halves go to the even neighbour)."""
    return int(round(height / multiple) * multiple), int(round(width / multiple) * multiple)


def detector_scale_size(height: int, width: int, short: int = 256) -> tuple[int, int]:
    """Size of the detector's internal pass: shorter side ``short``, the other side rounded to ×16."""
    if height < width:
        nh, nw = short, width / height * short
    else:
        nh, nw = height / width * short, short
    return int(round(nh / 16) * 16), int(round(nw / 16) * 16)
