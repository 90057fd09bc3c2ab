"""Scene content a defect detector must leave alone: hard negatives drawn into clean photos.

A detector trained only on photos plus synthetic damage takes any thin, high-contrast structure for a
scratch: shop-sign lettering and poster frames, white patterned fabric, ropes and rigging, collars and
blouses, hair bows and petals, highlights in eyes and glasses, bright sky through leaves, blown-out white
areas.  The photo corpus has too few of them, so :func:`add_content` draws such structures into a CLEAN
photo before any degradation (``DegradeConfig.p_content``): they then age with the scene (tone, blur,
noise, fading, grain, the defects drawn over them) and are labelled 0, because the defect mask only comes
from the damage drawn afterwards.

Each drawer blends one structure into the image through a coverage map (``alpha``, H×W in [0, 1]) drawn
2× supersampled and area-downsampled like the strokes of :mod:`oldphoto.synth.structured`, then softened a
little as a lens would.  Bright structures (white on darker ground) are the commonest, because most
defects are bright and those are the false alarms that cost detail.

Lettering uses the scalable TrueType/OpenType fonts found in the usual system folders plus Pillow's
built-in font (scalable with FreeType, a small bitmap font without), so the set of glyphs, and therefore
the exact pixels for a seed, depends on the machine; the random stream and everything else does not.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from oldphoto.synth.structured import hole_shape
from oldphoto.synth.textures import elastic, smooth_noise

SS = 2  # supersampling factor of the drawing canvas
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
             "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
MAX_FONTS = 64
GLYPHS = string.ascii_uppercase * 3 + string.ascii_lowercase + string.digits + "&.-'"

Drawer = Callable[[np.ndarray, np.random.Generator], np.ndarray]


# --------------------------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """Scalable font files on this machine (sorted, at most :data:`MAX_FONTS`; may be empty)."""
    found: set[str] = set()
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            found.update(str(p) for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    return tuple(sorted(found)[:MAX_FONTS])


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:  # an unreadable or unsupported file: fall back to Pillow's own font
            pass
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _canvas(h: int, w: int) -> np.ndarray:
    return np.zeros((h * SS, w * SS), np.float32)


def _finish(canvas: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Supersampled canvas -> coverage ``H×W``, softened by a random lens blur (in focus or not quite)."""
    alpha = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    sigma = float(rng.uniform(0.0, 0.9))
    if sigma > 0.25:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    return np.clip(alpha, 0.0, 1.0)


def _paint(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``image`` with ``colour`` (RGB, or an ``H×W×3`` field) laid over it at coverage ``alpha``."""
    a = np.clip(alpha, 0.0, 1.0)[:, :, None]
    return np.clip(image * (1.0 - a) + np.asarray(colour, np.float32) * a, 0.0, 1.0).astype(np.float32)


def _tint(rng: np.random.Generator, level: float) -> np.ndarray:
    """A near-neutral colour of luma about ``level`` (whites are warm or cool, darks slightly coloured)."""
    return np.clip(level + rng.normal(0.0, 0.03, 3), 0.0, 1.0).astype(np.float32)


def _bright(rng: np.random.Generator) -> np.ndarray:
    return _tint(rng, float(rng.uniform(0.72, 1.0)))


def _dark(rng: np.random.Generator) -> np.ndarray:
    return _tint(rng, float(rng.uniform(0.0, 0.28)))


def _pair(rng: np.random.Generator, p_bright: float = 0.65) -> tuple[np.ndarray, np.ndarray]:
    """(figure, ground) colours of strong contrast; the figure is bright with probability ``p_bright``."""
    if rng.random() < p_bright:
        return _bright(rng), _dark(rng)
    return _dark(rng), _bright(rng)


def _pt(x: float, y: float) -> tuple[int, int]:
    """Supersampled integer point for OpenCV."""
    return int(round(x * SS)), int(round(y * SS))


def _curve(canvas: np.ndarray, pts: np.ndarray, width: float, value: float = 1.0) -> None:
    p = np.round(pts * SS * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [p], False, value, max(1, int(round(width * SS))), cv2.LINE_AA, shift=4)


# --------------------------------------------------------------------------------------------- drawers
def lettering(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Words of a shop sign, poster or caption: bright or dark letters, plain, outlined or on a board."""
    h, w = image.shape[:2]
    fonts = font_files()
    path = fonts[int(rng.integers(len(fonts)))] if fonts and rng.random() < 0.8 else ""
    size = int(np.exp(rng.uniform(np.log(6), np.log(max(7.0, min(h, w) / 4)))))
    font = _font(path, size * SS)
    lines = ["".join(rng.choice(list(GLYPHS), int(rng.integers(2, 12)))).replace("  ", " ")
             for _ in range(int(rng.integers(1, 4)))]
    text = "\n".join(lines)
    layer = Image.new("L", (w * SS, h * SS), 0)
    draw = ImageDraw.Draw(layer)
    x, y = rng.uniform(-0.2, 0.8) * w * SS, rng.uniform(-0.1, 0.85) * h * SS
    outline = int(rng.integers(1, 3)) * SS if rng.random() < 0.25 else 0
    draw.multiline_text((x, y), text, fill=255, font=font, spacing=size * SS // 4, stroke_width=outline,
                        stroke_fill=255 if outline else None)
    letters = np.asarray(layer, np.float32) / 255.0
    angle = float(rng.normal(0.0, 4.0))
    if abs(angle) > 0.5:
        rot = cv2.getRotationMatrix2D((x, y), angle, 1.0)
        letters = cv2.warpAffine(letters, rot, (w * SS, h * SS), flags=cv2.INTER_LINEAR)
    fig, ground = _pair(rng)
    out = image
    if rng.random() < 0.4:  # a sign board or poster behind the letters, often framed
        ys, xs = np.nonzero(letters > 0.1)
        if len(xs):
            pad = size * SS * rng.uniform(0.3, 1.0)
            board = _canvas(h, w)
            box = (_pt(xs.min() / SS - pad / SS, ys.min() / SS - pad / SS),
                   _pt(xs.max() / SS + pad / SS, ys.max() / SS + pad / SS))
            cv2.rectangle(board, box[0], box[1], 1.0, -1, cv2.LINE_AA)
            out = _paint(out, _finish(board, h, w, rng), ground)
            if rng.random() < 0.6:
                frame = _canvas(h, w)
                edge = max(1, int(rng.uniform(0.6, 3.0) * SS))
                cv2.rectangle(frame, box[0], box[1], 1.0, edge, cv2.LINE_AA)
                out = _paint(out, _finish(frame, h, w, rng), fig)
    alpha = cv2.resize(letters, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        alpha = cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.3, 0.8)))
    return _paint(out, np.clip(alpha, 0, 1) * np.float32(rng.uniform(0.7, 1.0)), fig)


def lines(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin lines that belong to the scene: sagging ropes and wires, straight rigging and poles, the bars
    of a window, railing, truss or windmill sail, or the outlines of frames and panels."""
    h, w = image.shape[:2]
    canvas = _canvas(h, w)
    kind = int(rng.integers(4))
    if kind == 0:  # catenaries: one to five near-parallel sagging curves across the frame
        n = int(rng.integers(1, 6))
        y0 = rng.uniform(0.05, 0.8) * h
        sag = rng.uniform(0.02, 0.4) * h
        tilt = rng.normal(0.0, 0.15) * h
        gap = rng.uniform(2.0, 14.0)
        width = rng.uniform(0.5, 3.5)
        x = np.linspace(-0.1 * w, 1.1 * w, 64)
        t = x / w
        for i in range(n):
            y = y0 + i * gap + tilt * t + sag * (1.0 - (2.0 * t - 1.0) ** 2) * rng.uniform(0.8, 1.2)
            _curve(canvas, np.stack([x, y], 1), width * rng.uniform(0.7, 1.0))
        if width > 2.0 and rng.random() < 0.5:  # a rope's twist: darker notches along it
            notches = np.zeros_like(canvas)
            step = max(2, int(width * SS * 1.2))
            for off in range(-h * SS, w * SS, step):
                cv2.line(notches, (off, 0), (off + h * SS, h * SS), 1.0, 1)
            canvas *= 1.0 - 0.5 * notches
    elif kind == 1:  # straight rigging, masts, poles, converging or parallel
        apex = np.array([rng.uniform(0, w), rng.uniform(-0.3, 0.4) * h])
        for _ in range(int(rng.integers(1, 7))):
            end = np.array([rng.uniform(-0.2, 1.2) * w, rng.uniform(0.6, 1.3) * h])
            start = apex if rng.random() < 0.6 else np.array([rng.uniform(0, w), rng.uniform(-0.2, 0.5) * h])
            _curve(canvas, np.stack([start, end]), rng.uniform(0.4, 2.5))
    elif kind == 2:  # a window frame, railing, truss or windmill sail: a grid of bars at any angle
        cw, ch = rng.uniform(5, 40), rng.uniform(5, 40)
        nx, ny = int(rng.integers(1, 8)), int(rng.integers(0, 8))
        bar = rng.uniform(0.6, 3.5)
        shear = rng.normal(0.0, 0.08)
        segs = [((i * cw, 0.0), (i * cw + shear * ny * ch, max(ny, 1) * ch)) for i in range(nx + 1)]
        segs += [((shear * j * ch, j * ch), (shear * j * ch + nx * cw, j * ch)) for j in range(ny + 1)]
        if ny and rng.random() < 0.4:  # diagonal bracing of a truss
            both = rng.random() < 0.5
            for i in range(nx):
                for j in range(ny):
                    segs.append(((i * cw, j * ch), ((i + 1) * cw, (j + 1) * ch)))
                    if both:
                        segs.append(((i * cw, (j + 1) * ch), ((i + 1) * cw, j * ch)))
        ang = rng.normal(0.0, 0.05) if rng.random() < 0.5 else rng.uniform(0, np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        origin = np.array([rng.uniform(-0.2, 0.6) * w, rng.uniform(-0.2, 0.6) * h])
        for a, b in segs:
            _curve(canvas, np.array([a, b]) @ rot.T + origin, bar)
    else:  # frames: poster and picture frames, panels, door and window surrounds
        for _ in range(int(rng.integers(1, 5))):
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            half = np.array([rng.uniform(4, 0.5 * w), rng.uniform(4, 0.5 * h)])
            ang = rng.normal(0.0, 0.04)
            rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
            box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * half @ rot.T + c
            _curve(canvas, box, rng.uniform(0.6, 3.0))
    fig, _ = _pair(rng, 0.55)
    return _paint(image, _finish(canvas, h, w, rng) * np.float32(rng.uniform(0.6, 1.0)), fig)


def _pattern(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A woven or printed pattern in [0, 1]: stripes, checks, dots or lace-like rings."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(2.5, 12.0)
    duty = rng.uniform(0.15, 0.5)
    u = (xx * np.cos(ang) + yy * np.sin(ang)) / period
    v = (-xx * np.sin(ang) + yy * np.cos(ang)) / (period * rng.uniform(0.7, 1.5))
    kind = int(rng.integers(4))
    if kind == 0:  # stripes
        return ((u % 1.0) < duty).astype(np.float32)
    if kind == 1:  # checks / plaid
        return np.maximum((u % 1.0) < duty, (v % 1.0) < duty).astype(np.float32)
    d = np.hypot((u % 1.0) - 0.5, ((v + 0.5 * np.floor(u)) % 1.0) - 0.5)
    if kind == 2:  # dots
        return (d < duty * 0.8).astype(np.float32)
    ring = np.abs(d - duty * 0.8) < 0.08 + 0.05 * rng.random()  # lace: rings and a fine diagonal net
    net = (np.abs(((u + v) % 1.0) - 0.5) < 0.06) | (np.abs(((u - v) % 1.0) - 0.5) < 0.06)
    return (ring | net).astype(np.float32)


def _garment(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Where the cloth is: a polygon (a sleeve, a skirt panel), an irregular blob, or the whole frame."""
    u = rng.random()
    if u < 0.15:
        return np.ones((h, w), np.float32)
    if u < 0.5:
        return hole_shape(h, w, rng)
    canvas = _canvas(h, w)
    c = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    k = int(rng.integers(3, 7))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(0.2, 0.6, k) * min(h, w)
    pts = c + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)
    cv2.fillPoly(canvas, [np.array([_pt(*p) for p in pts])], 1.0, cv2.LINE_AA)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)


def fabric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A patch of patterned cloth (a blouse, dress, tablecloth): pattern warped by folds and shaded."""
    h, w = image.shape[:2]
    region = _garment(h, w, rng)
    hs, ws = h * SS, w * SS
    pat = cv2.resize(_pattern(hs, ws, rng), (w, h), interpolation=cv2.INTER_AREA)
    pat = elastic(pat, rng, alpha=float(rng.uniform(0.5, 4.0)), sigma=float(rng.uniform(12, 40)))
    fig, ground = _pair(rng)
    cloth = ground[None, None, :] * (1.0 - pat[:, :, None]) + fig[None, None, :] * pat[:, :, None]
    folds = 1.0 + 0.25 * smooth_noise(h, w, rng, float(rng.uniform(10, 40)))
    cloth = np.clip(cloth * folds[:, :, None], 0.0, 1.0)
    alpha = cv2.GaussianBlur(region, (0, 0), float(rng.uniform(0.4, 1.5)))
    return _paint(image, alpha, cloth)


def bright_shapes(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hard-edged light shapes on darker ground: collars and shirt fronts (with a dark tie), hair bows,
    petals; sometimes dark on light."""
    h, w = image.shape[:2]
    fig, ground = _pair(rng, 0.8)
    out = image
    for _ in range(int(rng.integers(1, 4))):
        canvas = _canvas(h, w)
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        s = float(np.exp(rng.uniform(np.log(3), np.log(max(4.0, min(h, w) / 3)))))
        kind = int(rng.integers(3))
        if kind == 0:  # collar: two wings meeting in a V, sometimes with a dark tie between them
            if rng.random() < 0.5:  # a dark jacket around it
                jacket = _canvas(h, w)
                cv2.ellipse(jacket, _pt(cx, cy + s), (int(s * 2.2 * SS), int(s * 1.8 * SS)), 0, 0, 360,
                            1.0, -1, cv2.LINE_AA)
                out = _paint(out, _finish(jacket, h, w, rng), ground)
            for side in (-1, 1):
                tri = np.array([[cx, cy], [cx + side * s, cy - s * rng.uniform(0.3, 0.8)],
                                [cx + side * s * rng.uniform(0.4, 1.0), cy + s * rng.uniform(0.6, 1.4)]])
                cv2.fillPoly(canvas, [np.array([_pt(*p) for p in tri])], 1.0, cv2.LINE_AA)
            out = _paint(out, _finish(canvas, h, w, rng), fig)
            if rng.random() < 0.5:
                tie = _canvas(h, w)
                q = np.array([[cx - s * 0.15, cy], [cx + s * 0.15, cy], [cx, cy + s * 1.5]])
                cv2.fillPoly(tie, [np.array([_pt(*p) for p in q])], 1.0, cv2.LINE_AA)
                out = _paint(out, _finish(tie, h, w, rng), ground)
            continue
        if kind == 1:  # bow: two triangles tip to tip with a knot
            a = rng.uniform(0, np.pi)
            d = np.array([np.cos(a), np.sin(a)]) * s
            n = np.array([-d[1], d[0]]) * rng.uniform(0.4, 0.8)
            for sign in (-1, 1):
                tri = np.array([[cx, cy], [cx, cy] + sign * d + n, [cx, cy] + sign * d - n])
                cv2.fillPoly(canvas, [np.array([_pt(*p) for p in tri])], 1.0, cv2.LINE_AA)
            cv2.circle(canvas, _pt(cx, cy), max(1, int(s * 0.25 * SS)), 1.0, -1, cv2.LINE_AA)
        else:  # flower: petals around a centre
            k = int(rng.integers(4, 9))
            a0 = rng.uniform(0, np.pi)
            for i in range(k):
                a = a0 + 2 * np.pi * i / k
                c = (cx + np.cos(a) * s * 0.6, cy + np.sin(a) * s * 0.6)
                cv2.ellipse(canvas, _pt(*c), (max(1, int(s * 0.55 * SS)), max(1, int(s * 0.22 * SS))),
                            float(np.degrees(a)), 0, 360, 1.0, -1, cv2.LINE_AA)
        out = _paint(out, _finish(canvas, h, w, rng), fig)
    return out


def highlights(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Specular highlights: catch lights in dark eyes, glints on glasses' rims, buttons and jewellery,
    lamps with star-shaped glare."""
    h, w = image.shape[:2]
    dark, light = _canvas(h, w), _canvas(h, w)
    kind = int(rng.integers(4))
    if kind == 3:  # lamps at night: a bright core with thin star-shaped diffraction spikes
        for _ in range(int(rng.integers(1, 5))):
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            rays = int(rng.choice([4, 6, 8]))
            a0 = rng.uniform(0, np.pi)
            length = rng.uniform(4, 30)
            for i in range(rays):
                a = a0 + np.pi * 2 * i / rays
                tip = c + length * rng.uniform(0.6, 1.0) * np.array([np.cos(a), np.sin(a)])
                _curve(light, np.array([c, tip]), rng.uniform(0.4, 1.2))
            cv2.circle(light, _pt(*c), max(1, int(rng.uniform(1.0, 3.0) * SS)), 1.0, -1, cv2.LINE_AA)
    elif kind == 0:  # pairs of eyes: dark iris with a small bright catch light
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(0.1, 0.8) * w, rng.uniform(0.1, 0.9) * h
            r = rng.uniform(1.2, 5.0)
            for ex in (cx, cx + r * rng.uniform(4, 7)):
                cv2.circle(dark, _pt(ex, cy), max(1, int(r * SS)), 1.0, -1, cv2.LINE_AA)
                glint = _pt(ex + r * rng.uniform(-0.5, 0.5), cy - r * rng.uniform(0, 0.5))
                cv2.circle(light, glint, max(1, int(r * rng.uniform(0.2, 0.45) * SS)), 1.0, -1, cv2.LINE_AA)
    elif kind == 1:  # spectacles: thin rims with short bright glints along them
        cx, cy = rng.uniform(0.1, 0.7) * w, rng.uniform(0.1, 0.9) * h
        rx, ry = rng.uniform(4, 16), rng.uniform(3, 10)
        rim = rng.uniform(0.5, 1.6)
        target = dark if rng.random() < 0.6 else light
        for ex in (cx, cx + rx * rng.uniform(2.2, 2.8)):
            cv2.ellipse(target, _pt(ex, cy), (int(rx * SS), int(ry * SS)), 0, 0, 360, 1.0,
                        max(1, int(rim * SS)), cv2.LINE_AA)
            a0 = rng.uniform(0, 360)
            cv2.ellipse(light, _pt(ex, cy), (int(rx * SS), int(ry * SS)), 0, a0, a0 + rng.uniform(15, 60),
                        1.0, max(1, int(rim * SS * 1.2)), cv2.LINE_AA)
        cv2.line(target, _pt(cx + rx, cy), _pt(cx + rx * 1.4, cy), 1.0, max(1, int(rim * SS)), cv2.LINE_AA)
    else:  # a row of buttons or studs, each with its glint
        n = int(rng.integers(2, 7))
        p = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
        step = rng.uniform(4, 14) * np.array([rng.normal(0, 0.3), 1.0])
        r = rng.uniform(1.0, 3.5)
        for i in range(n):
            c = p + i * step
            cv2.circle(dark, _pt(*c), max(1, int(r * SS)), 1.0, -1, cv2.LINE_AA)
            cv2.circle(light, _pt(c[0] - r * 0.3, c[1] - r * 0.3), max(1, int(r * 0.35 * SS)), 1.0, -1,
                       cv2.LINE_AA)
    out = _paint(image, _finish(dark, h, w, rng), _dark(rng))
    return _paint(out, _finish(light, h, w, rng), _bright(rng))


def foliage(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark foliage with bright sky showing through small irregular gaps, and twigs against the sky."""
    h, w = image.shape[:2]
    crown = hole_shape(h, w, rng) if rng.random() < 0.6 else np.ones((h, w), np.float32)
    crown = cv2.GaussianBlur(crown, (0, 0), 1.5)
    sky_colour, leaf_colour = _bright(rng), _dark(rng)
    # the sky around the crown, then the crown's dark mass
    out = _paint(image, np.float32(rng.uniform(0.0, 1.0)) * (1.0 - crown), sky_colour)
    out = _paint(out, crown, leaf_colour)
    # gaps: where fine leaf-scale noise is high, in clusters set by a coarser field
    fine = smooth_noise(h, w, rng, float(rng.uniform(1.5, 5.0)))
    coarse = smooth_noise(h, w, rng, float(rng.uniform(12.0, 40.0)))
    openness = rng.uniform(0.2, 0.7)
    gaps = np.clip((fine + 0.6 * coarse - (1.0 - openness)) * 4.0, 0.0, 1.0).astype(np.float32)
    out = _paint(out, cv2.GaussianBlur(gaps, (0, 0), 0.5) * crown, sky_colour)
    twigs = _canvas(h, w)
    for _ in range(int(rng.integers(0, 6))):
        p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        a = rng.uniform(0, 2 * np.pi)
        steps = np.stack([np.cos(a + rng.normal(0, 0.3, 12)), np.sin(a + rng.normal(0, 0.3, 12))], 1)
        _curve(twigs, p + np.cumsum(steps * rng.uniform(2, 8), 0), rng.uniform(0.5, 2.0))
    return _paint(out, _finish(twigs, h, w, rng), leaf_colour)


def bright_area(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A blown-out or white area: overexposed sky, a white wall, a shirt front, snow, with a sharp or a
    soft edge.  The twin of a hole showing bare paper: without it a detector learns that anything flat and
    near-white is damage."""
    h, w = image.shape[:2]
    region = hole_shape(h, w, rng) if rng.random() < 0.6 else np.ones((h, w), np.float32)
    if rng.random() < 0.4:  # a straight edge, like a wall or the horizon
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        region = ((xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a) > rng.uniform(-0.4, 0.4) * min(h, w))
        region = region.astype(np.float32)
    alpha = cv2.GaussianBlur(region, (0, 0), float(np.exp(rng.uniform(np.log(0.4), np.log(6.0)))))
    level = float(rng.uniform(0.85, 1.0))
    shade = level + float(rng.uniform(0.0, 0.08)) * smooth_noise(h, w, rng, float(rng.uniform(20, 80)))
    field = np.clip(shade[:, :, None] * _tint(rng, 1.0)[None, None, :], 0.0, 1.0)
    return _paint(image, alpha, field)


def rim_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin light (or dark) lines along the photo's OWN edges, in patches: rim light on a cup's lip, a
    collar, a face or a tripod leg, the lit edge of a frame.  A scratch crosses the scene regardless of
    it; a line that follows an object's boundary belongs to the scene."""
    h, w = image.shape[:2]
    y = (image @ np.float32([0.299, 0.587, 0.114]) * 255).astype(np.uint8)
    y = cv2.GaussianBlur(y, (0, 0), float(rng.uniform(1.2, 2.0)))  # object contours, not texture
    low = float(rng.uniform(50, 100))
    edges = cv2.Canny(y, low, low * 2.5)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    long = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 20)
    long = long[long > 0]  # label 0 is the background
    if long.size == 0:
        return image
    rim = np.isin(labels, long).astype(np.float32)
    rim *= (smooth_noise(h, w, rng, float(rng.uniform(15, 50))) > rng.uniform(-0.3, 0.4))
    if rng.random() < 0.3:  # a two-pixel rim
        rim = cv2.dilate(rim, np.ones((2, 2), np.uint8))
    alpha = cv2.GaussianBlur(rim, (0, 0), float(rng.uniform(0.4, 0.8))) * np.float32(rng.uniform(0.7, 1.2))
    colour = _bright(rng) if rng.random() < 0.75 else _dark(rng)
    return _paint(image, np.clip(alpha, 0.0, 1.0), colour)


DRAWERS: dict[str, Drawer] = {
    "lettering": lettering,
    "lines": lines,
    "fabric": fabric,
    "bright_shapes": bright_shapes,
    "highlights": highlights,
    "foliage": foliage,
    "bright_area": bright_area,
    "rim_light": rim_light,
}
# lettering, lines and light shapes were the commonest false alarms on real photos
WEIGHTS = np.array([0.2, 0.2, 0.1, 0.11, 0.09, 0.08, 0.09, 0.13])


def add_content(image: np.ndarray, rng: np.random.Generator, count: tuple[int, int] = (1, 3)
                ) -> tuple[np.ndarray, list[str]]:
    """Draw ``count`` (inclusive range) random scene structures into ``image`` (float32 RGB ``H×W×3`` in
    [0, 1], not modified); returns the new image and the drawers' names."""
    out = np.asarray(image, np.float32)
    names = []
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        name = list(DRAWERS)[int(rng.choice(len(DRAWERS), p=WEIGHTS / WEIGHTS.sum()))]
        out = DRAWERS[name](out, rng)
        names.append(name)
    return np.clip(out, 0.0, 1.0).astype(np.float32), names
