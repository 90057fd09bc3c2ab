"""How much memory (and time) restoring a photo will take, from its header, before it is decoded.

The pixel guard (``--max-pixels``) stops decompression bombs but says nothing about whether a photo fits
this machine: a 110 Mpx photo under the 120 Mpx guard needs about 10 GB.  ``estimate`` predicts the peak
from the header and the restore options; ``guard`` refuses a photo whose estimate exceeds the memory
limit (by default what the system has available when the photo starts) and warns when the time
estimate (from the photos this batch already restored) is long.

The figures are the whole process's peak per pixel, measured on CPU with explicit small networks at two
photo sizes (the slope), so they count the whole-photo arrays of the pipeline and the batch (input,
output, masks, colour and tone planes); the networks' tile working memory is bounded by the tile budget
(``--max-memory``), which is added in full.  tests/batch/test_archive.py checks the quality path's figure
against a measured peak.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oldphoto.io import PhotoError
from oldphoto.io.photo import PhotoHeader
from oldphoto.reasons import ReasonCode
from oldphoto.stages.official_sizes import detector_scale_size, official_size

# whole-photo bytes per pixel of each path beyond the decoded input's float copy (12 B/px): the slope of
# the peak RSS between a 1 and a 3.8 Mpx photo, each in a fresh process, tiny networks, 256 MB tile
# budget (quality 73, hr 85; the scratch path differs from hr only in its mapping network, whose working
# memory is per tile), with a margin of about 20 %.  Photos that fit the budget now run in one pass
# (tiles from the loaded networks): the quality path's slope rose to 96, so every path gained 27.
PATH_BYTES_PER_PIXEL = {"quality": 115, "scratch": 131, "hr": 135}
FLOAT_PIXEL = 12                 # float32 RGB: the decoded photo, and its restoration
RUNTIME_BYTES = 512 << 20        # networks' weights, the runtime's own buffers
DEFAULT_TILE_BUDGET = 2 << 30    # --max-memory's default
# --compat official's detector sees the photo (rounded to ×16) at a 256-px short side, untiled: a thin
# strip is enlarged many times (3000×10 -> 256×48128).  Its peak's slope over that pass, measured on CPU
# with the bundled detector between a 1500×10 and a 3000×10 strip (3.6 and 6.8 GB), with a margin of 20 %
COMPAT_DETECTOR_BYTES_PER_PIXEL = 620
LONG_SECONDS = 600.0             # warn before a photo estimated to take longer than this
_MEMORY_SHARE = 0.9              # of the available memory a photo may plan to use


@dataclass
class Footprint:
    bytes: int
    path: str                      # the costliest path these options may take for this photo
    seconds: float | None = None   # None: no rate known yet
    why: str = ""                  # what makes it costly, when not the path itself


def compat_detector_pixels(width: int, height: int) -> int:
    """Pixels of --compat official's detector pass over a ``width``×``height`` photo: the photo rounded to
    ×16, then its short side scaled to 256 (0: the official mode refuses it as too small)."""
    h, w = official_size(height, width, 16)
    if not h or not w:
        return 0
    nh, nw = detector_scale_size(h, w)
    return nh * nw


def _option(options: Mapping[str, Any], name: str, default: Any) -> Any:
    value = options.get(name, default)
    return default if value is None else value


def possible_paths(megapixels: float, options: Mapping[str, Any]) -> list[str]:
    """The paths the restorer may take (the defect mask that decides is only known after decoding)."""
    if _option(options, "scratches", "auto") == "off":
        return ["quality"]
    if _option(options, "hr", False) or megapixels > float(_option(options, "hr_above", 4.0)):
        return ["quality", "hr"]
    return ["quality", "scratch"]


def estimate(header: PhotoHeader, options: Mapping[str, Any] | None = None,
             seconds_per_mpx: float | None = None) -> Footprint:
    """Peak memory of reading, restoring and writing the photo ``header`` describes."""
    options = options or {}
    px = header.pixels
    paths = possible_paths(px / 1e6, options)
    path = max(paths, key=PATH_BYTES_PER_PIXEL.__getitem__)
    sample_bytes = header.channels * (2 if header.bit_depth == 16 else 1)
    # decoding: the decoder's buffer, our samples, their oriented copy, then the float pixels
    reading = px * (3 * sample_bytes + 4 + FLOAT_PIXEL)
    restoring = px * (FLOAT_PIXEL + PATH_BYTES_PER_PIXEL[path])
    from oldphoto.options import parse_memory  # the notation of --max-memory

    budget = parse_memory(_option(options, "max_memory", DEFAULT_TILE_BUDGET)) or DEFAULT_TILE_BUDGET
    # --upscale k: the photo and its restoration, the k²-times larger result and its samples being encoded
    # (the upscaler's own working memory is per tile, within the budget)
    k = int(_option(options, "upscale", 1))
    enlarging = px * (2 * FLOAT_PIXEL + k * k * (FLOAT_PIXEL + 2 * sample_bytes)) if k > 1 else 0
    detecting, why = 0, ""
    if _option(options, "compat", "none") == "official" and _option(options, "scratches", "auto") != "off":
        seen = compat_detector_pixels(header.width, header.height)
        detecting = px * 2 * FLOAT_PIXEL + seen * COMPAT_DETECTOR_BYTES_PER_PIXEL
        if detecting > max(reading, restoring + budget, enlarging + budget):
            why = (f"--compat official's detector, which sees it enlarged to a 256-px short side "
                   f"({seen / 1e6:.1f} Mpx, untiled)")
    total = max(reading, restoring + budget, enlarging + budget, detecting) + RUNTIME_BYTES
    seconds = seconds_per_mpx * px / 1e6 if seconds_per_mpx else None
    return Footprint(int(total), path, seconds, why)


def available_memory() -> int | None:
    """Bytes the system can give this process now (Linux: MemAvailable, within a cgroup's limit)."""
    available = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:  # a container's own limit (cgroup v2) may be far below the machine's
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1024:.0f} KB"


def human_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


@dataclass
class Guard:
    """``read_photo``'s guard for a batch: refuse photos that cannot fit, warn about long ones.

    ``limit``: bytes, or None for the memory available when each photo starts.  ``record(megapixels,
    seconds)`` after each restored photo feeds the time estimate.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    rates: list[float] = field(default_factory=list)    # seconds per megapixel
    restored: int = 0
    available: Callable[[], int | None] = available_memory
    on_long: Callable[[str], None] | None = None   # told before a long photo starts

    def record(self, megapixels: float, seconds: float) -> None:
        """A restored photo's time.  The first one is left out (it loads the networks), and so are
        photos under 0.25 Mpx (fixed costs would make their rate per megapixel meaningless)."""
        self.restored += 1
        if self.restored > 1 and megapixels >= 0.25:
            self.rates.append(seconds / megapixels)

    def rate(self) -> float | None:
        # the slowest rate seen: a photo may take the slow (defect) path even if the last ones did not
        return max(self.rates) if self.rates else None

    def __call__(self, header: PhotoHeader) -> list[str]:
        need = estimate(header, self.options, self.rate())
        size = f"{header.width}x{header.height} ({header.pixels / 1e6:.1f} Mpx)"
        if self.limit is not None:
            room, what = self.limit, "the --memory-limit of"
        else:
            free = self.available()
            room = None if free is None else int(free * _MEMORY_SHARE)
            what = "the memory available,"
        if room is not None and need.bytes > room:
            where = f"for {need.why}" if need.why else f"on the {need.path} path"
            remedy = ("restore it without --compat official" if need.why
                      else "lower the tile budget --max-memory")
            raise PhotoError(header.path, (
                f"not enough memory: a {size} photo needs about {human_bytes(need.bytes)} {where}, more than "
                f"{what} {human_bytes(room)} (estimated from the header, nothing decoded); free memory, "
                f"{remedy}, or raise --memory-limit to try anyway"), code=ReasonCode.NOT_ENOUGH_MEMORY)
        notes = []
        if need.seconds is not None and need.seconds > LONG_SECONDS:
            note = (f"large photo {size}: about {human_seconds(need.seconds)} at this batch's rate so far, "
                    f"up to {human_bytes(need.bytes)} of memory")
            notes.append(note)
            if self.on_long is not None:
                self.on_long(f"{header.path}: {note}")
        return notes
