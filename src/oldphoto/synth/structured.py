"""Structured (local) defects: scratches, cracks, dust, holes, creases; plus film grain and paper surface.

Each defect function returns ``(image, strength)``: ``strength`` (float32 ``H×W`` in [0, 1]) is how much
of the local content the defect replaced.  The blend is ``out = img + strength·(blend(img, colour) − img)``,
so no pixel changes by more than its strength.  ``defect_mask(strength)`` turns that into the binary mask
(1 = content destroyed enough that inpainting should take over); by construction every pixel whose value
changes by more than the mask threshold is inside the mask.

Strokes are drawn on a 2× supersampled canvas with OpenCV and area-downsampled, which gives sub-pixel widths
and soft edges like real emulsion damage.
"""

from __future__ import annotations

import cv2
import numpy as np

from oldphoto.synth.textures import elastic, paper, paper_detail, smooth_noise

SS = 2  # supersampling factor for stroke drawing
BLEND_MODES = ("add", "lighten", "screen")


# --------------------------------------------------------------------------------------------- blending
def blend(image: np.ndarray, colour: np.ndarray, strength: np.ndarray, mode: str) -> np.ndarray:
    """Blend a flat ``colour`` (RGB, or ``H×W×3``) over ``image`` with per-pixel opacity ``strength``.

    Modes: ``add`` (layer addition), ``lighten`` (lighten-only), ``screen`` (the paper's three) and
    ``multiply`` (dark defects such as dirt or negative scratches).
    """
    if mode not in ("add", "lighten", "screen", "multiply", "replace"):
        raise ValueError(f"unknown blend mode {mode!r}")
    colour = np.asarray(colour, dtype=np.float32)
    # Defects cover a few percent of the pixels: blend only where the layer is non-zero.
    where = strength > (1.0 / 1024.0)
    out = np.array(image, dtype=np.float32, copy=True)
    img = out[where]
    col = colour[where] if colour.ndim == 3 else colour
    if mode == "add":
        target = np.minimum(img + col, 1.0)
    elif mode == "lighten":
        target = np.maximum(img, col)
    elif mode == "screen":
        target = 1.0 - (1.0 - img) * (1.0 - col)
    elif mode == "multiply":
        target = img * col
    else:
        target = np.broadcast_to(col, img.shape)
    out[where] = img + strength[where][:, None].astype(np.float32) * (target - img)
    return out


def defect_mask(strength: np.ndarray, threshold: float = 0.3, change: np.ndarray | None = None,
                visible: float = 0.06) -> np.ndarray:
    """Binary defect mask (bool ``H×W``): where the defect replaced at least ``threshold`` of the content.

    With ``change`` (max-over-channels |after − before| of the defect stage) the mask keeps only defects that
    are visible (change ≥ ``visible`` within one pixel): a white scratch over white sky or a dark one over
    black shadow changes nothing, and a detector must not be taught to find it.  Every pixel that changed by
    more than ``threshold`` is still inside the mask (its strength is at least that change).
    """
    mask = strength >= threshold
    if change is not None:
        seen = cv2.dilate((change >= visible).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        mask &= seen
    return mask


# --------------------------------------------------------------------------------------------- strokes
def _walk(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, step: float,
          turn_sd: float, jag_sd: float) -> np.ndarray:
    """Points of a random walk: smooth curvature (``turn_sd`` rad/step, integrated) plus jagged kinks."""
    n = max(2, int(length / step))
    curvature = np.cumsum(rng.normal(0.0, turn_sd, n)) * 0.15  # slowly varying bend
    angles = angle + np.cumsum(curvature) * 0.1 + rng.normal(0.0, jag_sd, n)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1) * step
    return start[None, :] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)], axis=0)


def _draw_polyline(canvas: np.ndarray, pts: np.ndarray, width: np.ndarray, value: np.ndarray) -> None:
    """Draw a polyline on the supersampled canvas with per-segment width (px) and intensity."""
    p = np.round(np.clip(pts * SS * 16, -2**24, 2**24)).astype(np.int32).tolist()  # 4 fractional bits
    thick = np.maximum(1, np.round(np.asarray(width) * SS)).astype(int).tolist()
    vals = np.asarray(value, dtype=float).tolist()
    for i in range(len(p) - 1):
        if vals[i] <= 0.02:
            continue
        cv2.line(canvas, p[i], p[i + 1], vals[i], thickness=thick[i], lineType=cv2.LINE_AA, shift=4)


def _profile(rng: np.random.Generator, n: int, base: float, var: float, gaps: bool) -> np.ndarray:
    """Smoothly varying values along a stroke; optional gaps (broken scratches)."""
    t = np.linspace(0, 1, n)
    k = int(rng.integers(2, 6))
    amps = rng.uniform(-1, 1, size=(k, 1))
    phases = rng.uniform(0, 6.3, size=(k, 1))
    wave = (amps * np.sin(2 * np.pi * np.arange(1, k + 1)[:, None] * t[None, :] + phases)).sum(0) / k
    out = base * (1.0 + var * wave)
    if gaps and n > 8:
        for _ in range(int(rng.integers(0, 4))):
            a = int(rng.integers(n))
            out[a:a + int(rng.integers(2, max(3, n // 6)))] = 0.0
    return np.clip(out, 0.0, None)


def _downsample(canvas: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.clip(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0)


def _random_start(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, float]:
    start = np.array([rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h])
    # Aim roughly through the image so strokes are not wasted outside it.
    target = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    angle = float(np.arctan2(*(target - start)[::-1]))
    return start, angle


def scratch_strokes(h: int, w: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """A scratch-texture layer (float32 ``H×W`` in [0, 1]) of ``count`` strokes of mixed kinds.

    Kinds: long thin curved scratches; near-straight film scratches (vertical bias); jagged branching
    cracks of the emulsion (like torn or flexed prints).
    """
    canvas = np.zeros((h * SS, w * SS), np.float32)
    size = float(max(h, w))
    for _ in range(count):
        kind = rng.choice(3, p=[0.45, 0.2, 0.35])
        start, angle = _random_start(rng, h, w)
        if kind == 0:  # curved scratch
            pts = _walk(rng, start, angle, rng.uniform(0.2, 1.2) * size, 3.0, 0.25, 0.02)
            width = _profile(rng, len(pts), rng.uniform(0.5, 2.2), 0.5, False)
            value = _profile(rng, len(pts), rng.uniform(0.6, 1.0), 0.5, rng.random() < 0.5)
            _draw_polyline(canvas, pts, width, value)
        elif kind == 1:  # film scratch: long, straight, mostly vertical
            if rng.random() < 0.7:
                start = np.array([rng.uniform(0, w), -5.0])
                angle = np.pi / 2 + rng.normal(0, 0.05)
            pts = _walk(rng, start, angle, rng.uniform(0.5, 1.3) * size, 4.0, 0.03, 0.005)
            width = _profile(rng, len(pts), rng.uniform(0.4, 1.2), 0.3, False)
            value = _profile(rng, len(pts), rng.uniform(0.5, 1.0), 0.4, rng.random() < 0.7)
            _draw_polyline(canvas, pts, width, value)
        else:  # crack network
            _crack(canvas, rng, start, angle, rng.uniform(0.15, 0.7) * size, depth=0)
    return _downsample(canvas, h, w)


def _crack(canvas: np.ndarray, rng: np.random.Generator, start: np.ndarray, angle: float, length: float,
           depth: int, widths: tuple[float, float] = (0.7, 2.5)) -> None:
    pts = _walk(rng, start, angle, length, rng.uniform(2.0, 5.0), 0.3, 0.35)
    width = _profile(rng, len(pts), rng.uniform(*widths) / (1 + depth), 0.6, False)
    value = _profile(rng, len(pts), rng.uniform(0.75, 1.0), 0.3, False)
    _draw_polyline(canvas, pts, width, value)
    if depth < 2:
        for _ in range(int(rng.poisson(1.5 if depth == 0 else 0.7))):
            i = int(rng.integers(len(pts)))
            branch_angle = angle + rng.choice([-1, 1]) * rng.uniform(0.4, 1.3)
            _crack(canvas, rng, pts[i], branch_angle, length * rng.uniform(0.15, 0.5), depth + 1, widths)


def _defect_colour(rng: np.random.Generator, dark: bool) -> np.ndarray:
    if dark:
        return np.full(3, rng.uniform(0.05, 0.3), np.float32)
    warm = rng.uniform(0.0, 0.08)
    return np.array([1.0, 1.0 - warm * 0.5, 1.0 - warm], np.float32) * np.float32(rng.uniform(0.9, 1.0))


def scratches(image: np.ndarray, rng: np.random.Generator, count: tuple[int, int] = (1, 8)
              ) -> tuple[np.ndarray, np.ndarray]:
    """Procedural scratch texture, elastically distorted, blended with a random mode and opacity."""
    h, w = image.shape[:2]
    n = int(rng.integers(count[0], count[1] + 1))
    layer = elastic(scratch_strokes(h, w, rng, n), rng, alpha=float(rng.uniform(1.0, 4.0)),
                    sigma=float(rng.uniform(16, 48)))
    opacity = np.float32(rng.uniform(0.6, 1.0))
    strength = np.clip(layer * opacity, 0.0, 1.0)
    if rng.random() < 0.15:  # dark scratches (scratched negative / dirt in the groove)
        out = blend(image, _defect_colour(rng, True), strength, "multiply")
    else:
        mode = BLEND_MODES[int(rng.integers(len(BLEND_MODES)))]
        out = blend(image, _defect_colour(rng, False), strength, mode)
    return out, strength


def _light_or_dark(image: np.ndarray, rng: np.random.Generator, alpha: np.ndarray, p_dark: float
                   ) -> np.ndarray:
    """Blend a defect layer (opacity already in ``alpha``) light (random mode) or, with ``p_dark``, dark."""
    if rng.random() < p_dark:
        return blend(image, _defect_colour(rng, True), alpha, "multiply")
    return blend(image, _defect_colour(rng, False), alpha, BLEND_MODES[int(rng.integers(len(BLEND_MODES)))])


def thin_cracks(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hairline cracks of the emulsion (about 0.3–1.2 px wide), often faint: the fine crazing that real
    prints show beside their bold scratches, and that a detector trained on bold strokes misses.

    The strength is the cracks' coverage, not their opacity: a faint crack is still damage to repair, and
    where it changes nothing visible :func:`defect_mask` drops it anyway."""
    h, w = image.shape[:2]
    canvas = np.zeros((h * SS, w * SS), np.float32)
    size = float(max(h, w))
    for _ in range(int(rng.integers(1, 5))):
        start, angle = _random_start(rng, h, w)
        _crack(canvas, rng, start, angle, rng.uniform(0.1, 0.6) * size, depth=0, widths=(0.35, 1.2))
    coverage = _downsample(canvas, h, w)
    opacity = np.float32(rng.uniform(0.3, 1.0))
    return _light_or_dark(image, rng, coverage * opacity, 0.25), coverage


def faint_scratches(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Low-contrast scratches (opacity 0.2–0.5): worn, half-filled grooves; the strength is their coverage
    (see :func:`thin_cracks`)."""
    h, w = image.shape[:2]
    layer = elastic(scratch_strokes(h, w, rng, int(rng.integers(1, 5))), rng,
                    alpha=float(rng.uniform(1.0, 4.0)), sigma=float(rng.uniform(16, 48)))
    opacity = np.float32(rng.uniform(0.2, 0.5))
    return _light_or_dark(image, rng, layer * opacity, 0.2), layer


def tear(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A torn or deeply cracked line: a jagged strip (1.5–4 px) of bare paper with soiled dark edges, the
    way cracks across old prints collect dirt.  Both the strip and the dark edges are damage."""
    h, w = image.shape[:2]
    canvas = np.zeros((h * SS, w * SS), np.float32)
    start, angle = _random_start(rng, h, w)
    pts = _walk(rng, start, angle, rng.uniform(0.3, 1.2) * max(h, w), rng.uniform(2.0, 4.0), 0.3, 0.25)
    width = _profile(rng, len(pts), rng.uniform(1.5, 4.0), 0.5, False)
    _draw_polyline(canvas, pts, width, np.ones(len(pts)))
    core = _downsample(canvas, h, w)
    reach = float(rng.uniform(0.8, 2.0))
    rim = np.clip(cv2.GaussianBlur(core, (0, 0), reach) * 2.5 - core, 0.0, 1.0)
    rim *= np.float32(rng.uniform(0.5, 1.0))
    out = blend(image, _defect_colour(rng, True), rim, "multiply")
    out = blend(out, _defect_colour(rng, False), core, "replace")
    return out, np.maximum(core, rim)


def dust(image: np.ndarray, rng: np.random.Generator, density: tuple[float, float] = (5.0, 40.0)
         ) -> tuple[np.ndarray, np.ndarray]:
    """Dust specks, spots and hairs/fibres; white (emulsion loss) or dark (dirt). ``density`` per 256² px."""
    h, w = image.shape[:2]
    n = int(rng.poisson(rng.uniform(*density) * h * w / 65536.0))
    light = np.zeros((h * SS, w * SS), np.float32)
    dark = np.zeros_like(light)
    for _ in range(n):
        canvas = dark if rng.random() < 0.3 else light
        x, y = rng.uniform(0, w) * SS, rng.uniform(0, h) * SS
        v = float(rng.uniform(0.6, 1.0))
        if rng.random() < 0.93:  # speck or blob (hairs are rarer)
            r = rng.pareto(2.5) * 0.6 + 0.4  # mostly tiny, a few larger spots
            r = float(min(r, 6.0)) * SS
            axes = (max(1, int(r * rng.uniform(0.6, 1.0))), max(1, int(r * rng.uniform(0.6, 1.0))))
            cv2.ellipse(canvas, (int(x), int(y)), axes, float(rng.uniform(0, 180)), 0, 360, v, -1,
                        cv2.LINE_AA)
        else:  # hair / fibre
            pts = _walk(rng, np.array([x, y]) / SS, float(rng.uniform(0, 2 * np.pi)), rng.uniform(5, 30),
                        1.5, 0.8, 0.05)
            _draw_polyline(canvas, pts, np.full(len(pts), rng.uniform(0.5, 1.2)), np.full(len(pts), v))
    s_light = _downsample(light, h, w)
    s_dark = _downsample(dark, h, w)
    out = blend(image, _defect_colour(rng, False), s_light, "lighten")
    out = blend(out, _defect_colour(rng, True), s_dark, "multiply")
    return out, np.maximum(s_light, s_dark)


def hole_shape(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random, irregular blob (float32 ``H×W`` in {0,1}), sometimes torn in from an edge or corner."""
    size = float(min(h, w))
    r = rng.uniform(0.06, 0.25) * size
    if rng.random() < 0.4:  # torn edge / corner: centre on the border
        side = int(rng.integers(4))
        cx = [0.0, float(w), rng.uniform(0, w), rng.uniform(0, w)][side]
        cy = [rng.uniform(0, h), rng.uniform(0, h), 0.0, float(h)][side]
        r *= 1.3
    else:
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    ang = float(rng.uniform(0, np.pi))
    ax = float(rng.uniform(0.5, 1.0))
    # Work only in the blob's bounding box (dist + rough < 1 needs dist < 1.5): most of the frame is empty.
    reach = 1.6 * r
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    out = np.zeros((h, w), np.float32)
    bh, bw = y1 - y0, x1 - x0
    # The noise is drawn at a fixed size so the random stream does not depend on the clipping.
    big_a = smooth_noise(int(2 * reach) + 2, int(2 * reach) + 2, rng, scale=max(r / 2.0, 4.0))
    big_b = smooth_noise(int(2 * reach) + 2, int(2 * reach) + 2, rng, 4.0)
    if bh <= 0 or bw <= 0:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(ang) + dy * np.sin(ang)) / r
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / (r * ax)
    dist = np.sqrt(u * u + v * v)
    # Ragged outline: perturb the radius with multi-scale noise (indexed in blob coordinates).
    oy, ox = y0 - int(cy - reach), x0 - int(cx - reach)
    rough = big_a[oy:oy + bh, ox:ox + bw] * 0.35 + big_b[oy:oy + bh, ox:ox + bw] * 0.12
    out[y0:y1, x0:x1] = (dist + rough < 1.0).astype(np.float32)
    return out


def holes(image: np.ndarray, rng: np.random.Generator, count: tuple[int, int] = (1, 2),
          use_tiles: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Feathered holes where the emulsion is gone and the paper shows through (with a soiled rim)."""
    h, w = image.shape[:2]
    shape = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        shape = np.maximum(shape, hole_shape(h, w, rng))
    feather = float(rng.uniform(0.6, 3.0))
    alpha = np.clip(cv2.GaussianBlur(shape, (0, 0), feather), 0.0, 1.0)
    base = paper(h, w, rng, use_tiles)
    # A soiled, slightly darker rim where the emulsion tore off.
    rim = np.clip(cv2.GaussianBlur(shape, (0, 0), feather * 2.5) - alpha, 0, 1)
    out = image * (1.0 - np.float32(rng.uniform(0.1, 0.25)) * rim[:, :, None])
    out = blend(out, base, alpha, "replace")
    # Rim darkening changes at most 0.25·rim < threshold, so only ``alpha`` counts as destroyed content.
    return out.astype(np.float32), alpha


def crease(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A fold across the print: a shading step along a gently curved line plus cracked emulsion on it."""
    h, w = image.shape[:2]
    # Line through a random interior point with a random direction, slightly bent.
    p = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    ang = rng.uniform(0, np.pi)
    d = np.array([np.cos(ang), np.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    bend = rng.uniform(-0.08, 0.08) * max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx - p[0]) * d[0] + (yy - p[1]) * d[1]
    half = 0.5 * np.hypot(h, w)
    signed = (xx - p[0]) * nrm[0] + (yy - p[1]) * nrm[1] - bend * (1 - (t / half) ** 2)
    rho = float(rng.uniform(2.0, 10.0))
    shade = np.float32(rng.uniform(0.04, 0.12)) * np.sign(signed) * np.exp(-np.abs(signed) / rho)
    out = np.clip(image * (1.0 + shade[:, :, None]), 0.0, 1.0).astype(np.float32)
    # Cracked emulsion along the fold: a jagged stroke following the curve, broken in places.
    ts = np.linspace(-half, half, int(2 * half / 2.5))
    base_pts = p[None, :] + ts[:, None] * d[None, :] + (bend * (1 - (ts / half) ** 2))[:, None] * nrm[None, :]
    jitter = np.cumsum(rng.normal(0, 0.25, len(ts)))
    jitter -= np.convolve(jitter, np.ones(15) / 15, mode="same")
    pts = base_pts + jitter[:, None] * nrm[None, :]
    canvas = np.zeros((h * SS, w * SS), np.float32)
    width = _profile(rng, len(pts), rng.uniform(0.6, 2.0), 0.7, False)
    value = _profile(rng, len(pts), rng.uniform(0.6, 1.0), 0.6, True)
    _draw_polyline(canvas, pts, width, value)
    for _ in range(int(rng.poisson(3))):  # small cracks branching off the fold
        i = int(rng.integers(len(pts)))
        _crack(canvas, rng, pts[i], ang + rng.choice([-1, 1]) * rng.uniform(0.5, 1.4),
               rng.uniform(0.03, 0.12) * max(h, w), depth=1)
    strength = _downsample(canvas, h, w) * np.float32(rng.uniform(0.7, 1.0))
    out = blend(out, _defect_colour(rng, False), strength, "lighten")
    return out, strength


# --------------------------------------------------------------------------------------------- global
def film_grain(image: np.ndarray, rng: np.random.Generator, amount: tuple[float, float] = (0.015, 0.06)
               ) -> np.ndarray:
    """Silver-halide grain: blurred noise, strongest in the mid-tones, mostly monochrome."""
    h, w = image.shape[:2]
    a = np.float32(rng.uniform(*amount))
    size = float(rng.uniform(0.4, 1.2))
    g = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), size)
    g /= max(float(g.std()), 1e-6)
    y = image.mean(axis=2)
    weight = 0.35 + 2.6 * y * (1.0 - y)  # mid-tones grainiest
    out = image + (a * g * weight)[:, :, None]
    if rng.random() < 0.3:  # a little chroma grain for colour film
        c = cv2.GaussianBlur(rng.standard_normal((h, w, 3), dtype=np.float32), (0, 0), size * 1.5)
        out += a * 0.3 * c
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def paper_surface(image: np.ndarray, rng: np.random.Generator, use_tiles: bool = True) -> np.ndarray:
    """Texture of the print surface (matte/silk paper) modulating the whole image slightly."""
    h, w = image.shape[:2]
    detail = paper_detail(h, w, rng, use_tiles) * np.float32(rng.uniform(0.2, 0.6))
    return np.clip(image * (1.0 + detail[:, :, None]), 0.0, 1.0).astype(np.float32)
