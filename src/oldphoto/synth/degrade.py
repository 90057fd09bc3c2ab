"""Compose the synthesis stages into one call: ``degrade(clean, rng, config) -> Degraded``.

Order (mirrors how a print ages and is then digitised; paper §4.2):
0. (optional, ``p_content``) scene content drawn into the clean photo (``content.py``): lettering, ropes,
   patterned fabric, collars, highlights, foliage; hard negatives for the defect detector, part of the
   clean target and never of the mask.
1. photographic tone: 10 % grayscale, else sometimes a toner (sepia, …). Applied to the clean target too,
   because restoration must not colourise (the released code greys both A and B).
2. unstructured ops of the paper in random order, each dropped with p = 0.3 (``unstructured.py``).
3. old-print look: fading/contrast loss, yellowing, vignetting (degraded only).
4. print damage: paper surface, creases, holes revealing paper, scratches, dust (``structured.py``);
   optionally (``p_thin_crack``, ``p_faint_scratch``, ``p_tear``) hairline cracks, low-contrast scratches
   and tears with dark edges; their strength maps give the defect mask.

The optional steps default to probability 0 and then draw nothing from the random stream, so a seed gives
the same sample as before they existed.
5. scan: film grain and an optional slight blur (paper: "film grain noise and blur … at this stage").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np

from oldphoto.synth import content, oldlook, structured
from oldphoto.synth.unstructured import apply_unstructured, to_grayscale

KINDS = ("mixed", "unstructured", "oldlook", "structured")


@dataclass(frozen=True)
class DegradeConfig:
    """Probabilities and switches of the synthesis.  ``kind`` selects which stages run:

    - ``mixed``: everything (default; training pairs for the scratch-aware mapping / VAE A);
    - ``unstructured``: tone + the paper's unstructured ops only (quality mapping, no mask);
    - ``oldlook``: unstructured + fading/tint/grain, no local defects;
    - ``structured``: tone + local defects + grain only (scratch-detector training).
    """

    kind: str = "mixed"
    p_drop: float = 0.3  # each unstructured op dropped with this probability (paper)
    p_gray: float = 0.1  # grayscale (paper / released code)
    p_tone: float = 0.3  # toner (sepia, …) when not grayscale
    p_fade: float = 0.5
    p_yellow: float = 0.3
    p_vignette: float = 0.3
    p_paper_surface: float = 0.5
    p_scratch: float = 0.6
    p_dust: float = 0.6
    p_hole: float = 0.2
    p_crease: float = 0.2
    p_grain: float = 0.6
    p_scan_blur: float = 0.3
    # optional (0 = off, and no random draw): hard negatives and the positives the detector needs most
    p_content: float = 0.0  # scene content drawn into the clean photo (content.py), labelled 0
    content_count: tuple[int, int] = (1, 3)
    p_thin_crack: float = 0.0
    p_faint_scratch: float = 0.0
    p_tear: float = 0.0
    scratch_count: tuple[int, int] = (1, 8)
    mask_threshold: float = 0.3  # strength above which content counts as destroyed (mask = 1)
    use_paper_tiles: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown degradation kind {self.kind!r}; choose from {', '.join(KINDS)}")
        for f in dataclasses.fields(self):
            if f.name.startswith("p_") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"{f.name} must be a probability in [0, 1], got {getattr(self, f.name)}")

    def replace(self, **changes: object) -> DegradeConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class Degraded:
    """A training sample: ``degraded`` and ``clean`` (float32 ``H×W×3`` in [0, 1]), ``mask`` (float32 ``H×W``
    in {0, 1}, 1 = structured defect), and ``ops`` (names of the applied operations, for inspection)."""

    degraded: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    ops: list[str] = field(default_factory=list)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator (used as is), a seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


MAX_OVERSHOOT = 1.5  # above this, a float image holds 0–255 data, not [0, 1]


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ValueError(f"image too small for synthesis: {arr.shape[1]}×{arr.shape[0]}")
    # 8-bit data clipped to [0, 1] would silently become a white image: refuse it instead
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"expected a float RGB image in [0, 1], got {arr.dtype} (divide 8-bit data by 255)")
    top = float(arr.max()) if arr.size else 0.0
    if top > MAX_OVERSHOOT:
        raise ValueError(f"expected a float RGB image in [0, 1], got values up to {top:g} "
                         "(divide 8-bit data by 255)")
    # resampling overshoots [0, 1] a little: that is clipped
    return np.clip(arr.astype(np.float32, copy=False), 0.0, 1.0)


def degrade(clean: np.ndarray, rng: np.random.Generator | int | None = None,
            config: DegradeConfig | None = None) -> Degraded:
    """Synthesise an old, damaged version of ``clean`` (float32 RGB ``H×W×3`` in [0, 1]).

    Deterministic for a given seed / generator state.  The returned ``clean`` may differ from the input
    by its photographic tone (grayscale / sepia), which is shared with ``degraded``; ``mask`` marks the
    local defects.
    """
    cfg = config or DegradeConfig()
    rng = as_generator(rng)
    image = _check_image(clean)
    h, w = image.shape[:2]
    ops: list[str] = []

    # 0. scene content that is no defect (part of the clean target)
    if cfg.p_content > 0 and rng.random() < cfg.p_content:
        image, drawn = content.add_content(image, rng, cfg.content_count)
        ops += [f"content:{name}" for name in drawn]

    # 1. photographic tone (shared with the target)
    if rng.random() < cfg.p_gray:
        image = to_grayscale(image)
        ops.append("grayscale")
    elif rng.random() < cfg.p_tone and cfg.kind != "unstructured":
        image, name = oldlook.random_tone(image, rng)
        ops.append(f"tone:{name}")
    toned = bool(ops) and ops[-1].startswith(("grayscale", "tone:"))
    target = image.copy()
    out = image

    # 2. the paper's unstructured degradations
    if cfg.kind in ("mixed", "unstructured", "oldlook"):
        out, applied = apply_unstructured(out, rng, cfg.p_drop)
        ops += applied

    # 3. ageing of the print
    if cfg.kind in ("mixed", "oldlook"):
        if rng.random() < cfg.p_fade:
            out = oldlook.fade(out, rng, colour=not toned)
            ops.append("fade")
        if rng.random() < cfg.p_yellow:
            out = oldlook.yellowing(out, rng)
            ops.append("yellowing")
        if rng.random() < cfg.p_vignette:
            out = oldlook.vignette(out, rng)
            ops.append("vignette")
        if rng.random() < cfg.p_paper_surface:
            out = structured.paper_surface(out, rng, cfg.use_paper_tiles)
            ops.append("paper_surface")

    # 4. local damage; strength = how much content each pixel lost
    strength = np.zeros((h, w), np.float32)
    before = out
    if cfg.kind in ("mixed", "structured"):
        for name, p, fn in (
            ("crease", cfg.p_crease, structured.crease),
            ("holes", cfg.p_hole, lambda x, r: structured.holes(x, r, use_tiles=cfg.use_paper_tiles)),
            ("scratches", cfg.p_scratch, lambda x, r: structured.scratches(x, r, cfg.scratch_count)),
            ("dust", cfg.p_dust, structured.dust),
        ):
            if rng.random() < p:
                out, s = fn(out, rng)
                strength = np.maximum(strength, s)
                ops.append(name)
        for name, p, fn in (
            ("thin_cracks", cfg.p_thin_crack, structured.thin_cracks),
            ("faint_scratches", cfg.p_faint_scratch, structured.faint_scratches),
            ("tear", cfg.p_tear, structured.tear),
        ):
            if p > 0 and rng.random() < p:
                out, s = fn(out, rng)
                strength = np.maximum(strength, s)
                ops.append(name)

    change = np.abs(out - before).max(axis=2)

    # 5. scanning / film: grain and a slight blur over everything (defects included)
    if cfg.kind != "unstructured":
        if rng.random() < cfg.p_grain:
            out = structured.film_grain(out, rng)
            ops.append("film_grain")
        if rng.random() < cfg.p_scan_blur:
            sigma = float(rng.uniform(0.3, 0.9))
            out = cv2.GaussianBlur(out, (0, 0), sigma)
            strength = cv2.GaussianBlur(strength, (0, 0), sigma)
            change = cv2.GaussianBlur(change, (0, 0), sigma)
            ops.append("scan_blur")

    mask = structured.defect_mask(strength, cfg.mask_threshold, change).astype(np.float32)
    return Degraded(np.clip(out, 0.0, 1.0).astype(np.float32), target.astype(np.float32), mask, ops)
