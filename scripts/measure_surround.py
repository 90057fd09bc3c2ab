"""What ``--scratches auto`` decides on prints lying on a plain surround, against the print on its own.

Each photo is pasted on surrounds a scan of a print may have (``print_on_surround`` in
:mod:`oldphoto.stages.prints`): a white border of a fifth of each side (``white20``; for the scratched
portraits also a third and a sixth, ``white30``), a grained dark album page (``album``), the same with
the print turned by 2° (``album_skew``), and a light gray scanner bed with a soft shadow (``bed``); the
scratched portraits also on dark pages of luma 0.08, 0.13 and 0.2 turned by 0, 1.5 and 3°, with and
without that shadow (``page0.13_turn1.5_shadow``: their dark parts run into the page).  One
line per scan: evidence (:attr:`Defects.evidence`, short sides), print edges, repaired or not, and the
photo's own decision; then how many scans are decided as their photo on its own.  The real photos in
``examples/``, and with ``--heldout`` the corpus' clean held-out photos and their gray copies:

    OLDPHOTO_CORPUS=... python scripts/measure_surround.py --heldout --out surround.json

With ``--edges``, instead, each print pushed into the top-left corner of a white border, a dark page
(upright and turned by 2°) and the bed, and against the left side of the border, the page and the bed
(``corner_album``, ``side_bed``: the print touches the scan's frame there), and the print turned by 2°
on the page with a corner 3 px off the left side (``touch_album_skew``); ``found`` says whether the
print was found or the whole scan judged.  With ``--beds``, each print on a scanner's bed as scanned at
home (``scanbed15_lid``: off centre, a shadow 15 px wide below and right of it, the lid's dark edge
along the top; see :func:`on_bed`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from oldphoto.io import read_photo
from oldphoto.pipeline import Restorer
from oldphoto.train import data as D

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REAL = sorted((EXAMPLES / "real_old").glob("*.png")) + [EXAMPLES / "solvay_1927.jpg"]


def turned(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo turned (bicubic, canvas grown to hold it) and where it lies (coverage in [0, 1])."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    size = (int(h * s + w * c + 0.5), int(h * c + w * s + 0.5))
    m[0, 2] += size[0] / 2 - w / 2
    m[1, 2] += size[1] / 2 - h / 2
    return (np.clip(cv2.warpAffine(image, m, size, flags=cv2.INTER_CUBIC), 0, 1),
            cv2.warpAffine(np.ones((h, w), np.float32), m, size, flags=cv2.INTER_LINEAR))


def on_surround(image: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """The photo on the surround ``kind``; ``corner_KIND`` pushed into the scan's top-left corner (the
    surround cut off above and left of it), ``side_KIND`` against its left side.  A print lying askew
    (``corner_album_skew``) runs off the scan by 5 % of its long side along both sides (an album page cut
    across it), so that its picture runs off them all along; ``touch_album_skew`` is pushed up to the
    left side so that one corner runs 3 px off it."""
    layout, _, rest = kind.partition("_")
    if layout not in ("corner", "side", "touch"):
        return placed(image, kind, seed)[0]
    scan, (y, x) = placed(image, rest, seed)
    if layout == "touch":  # askew, pushed up to the left side: a corner 3 px off it, the page beside it
        return scan[:, x + 3:]
    if rest.endswith("skew"):
        cut = int(0.05 * max(image.shape[:2]))  # beyond the turned edges' 0.035 of the long side
        y, x = y + cut, x + cut
    return scan[y:, x:] if layout == "corner" else scan[:, x:]


def placed(image: np.ndarray, kind: str, seed: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo on the surround ``kind`` and where its box's top-left corner lies (row, column)."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    if kind.startswith("white"):
        my, mx = (int(0.2 * h), int(0.2 * w)) if kind == "white20" else (int(0.3 * h), int(0.15 * w))
        scan = np.full((h + 2 * my, w + 2 * mx, 3), 1.0 if kind == "white20" else 0.97, np.float32)
        scan[my:my + h, mx:mx + w] = image
        return scan, (my, mx)
    if kind in ("album", "album_skew"):
        return on_page(image, 0.09, 0.0 if kind == "album" else 2.0, False, rng)
    if kind.startswith("page"):  # "page0.13_turn1.5" or "page0.13_turn1.5_shadow"
        luma_, turn, *shadow = kind[4:].split("_")
        return on_page(image, float(luma_), float(turn[4:]), bool(shadow), rng)
    if kind == "bed":
        big_h, big_w = int(h * 1.35), int(w * 1.5)
        scan = np.full((big_h, big_w, 3), 0.86, np.float32) + rng.normal(0, 0.004, (big_h, big_w, 1))
        y, x = int(0.08 * big_h), int(0.1 * big_w)
        shadow = np.zeros((big_h, big_w), np.float32)
        shadow[y + 4:y + h + 4, x + 5:x + w + 5] = 1
        scan *= (1 - 0.35 * cv2.GaussianBlur(shadow, (0, 0), 4))[..., None]
        scan[y:y + h, x:x + w] = image
        return np.clip(scan, 0, 1).astype(np.float32), (y, x)
    if kind.startswith("scanbed"):  # "scanbed15", "scanbed15_one", "scanbed15_lid"
        width, *rest = kind[7:].split("_")
        return on_bed(image, int(width), "one" in rest, "lid" in rest, rng)
    raise ValueError(kind)


def on_bed(image: np.ndarray, width: int, one: bool, lid: bool,
           rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo on a scanner's bed as a family scans it: off centre, on a bed of luma 0.83-0.87 (a
    faint gradient across it, a little noise), a shadow ``width`` px wide fading from 0.5 at the print's
    edge to the bed's tone below and right of it (right only when ``one``), and with ``lid`` the dark
    edge of the scanner's lid along the scan's top (a strip of luma 0.2, 2 % of its height)."""
    h, w = image.shape[:2]
    big_h, big_w = int(h * 1.3), int(w * 1.45)
    bed = 0.83 + 0.04 * np.linspace(0, 1, big_w, dtype=np.float32)[None] + 0.01 * np.linspace(
        0, 1, big_h, dtype=np.float32)[:, None]
    bed = bed + rng.normal(0, 0.006, (big_h, big_w)).astype(np.float32)
    y, x = int(0.06 * big_h), int(0.12 * big_w)
    rows, cols = np.mgrid[:big_h, :big_w].astype(np.float32)
    # depth of the shadow: 1 at the print's edge, 0 at ``width`` px from it, tapering at its ends
    right = np.clip(1 - (cols - (x + w)) / width, 0, 1) * (cols >= x + w)
    right *= np.clip((rows - y) / width, 0, 1) * np.clip((y + h + width - rows) / width, 0, 1)
    shade = right
    if not one:
        below = np.clip(1 - (rows - (y + h)) / width, 0, 1) * (rows >= y + h)
        below *= np.clip((cols - x) / width, 0, 1) * np.clip((x + w + width - cols) / width, 0, 1)
        shade = np.maximum(shade, below)
    scan = bed - (bed - 0.5) * shade**2
    if lid:
        edge = int(0.02 * big_h)
        scan[:edge] = 0.2 + rng.normal(0, 0.006, (edge, big_w))
        scan[edge:edge + 2] = 0.5  # its soft edge
    scan = np.repeat(np.clip(scan, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    scan[y:y + h, x:x + w] = image
    return scan, (y, x)


def on_page(image: np.ndarray, page: float, degrees: float, shadow: bool,
            rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo on a grained dark album page of luma ``page`` (a little warmer than gray), turned by
    ``degrees``, with a soft shadow below and right of it as on the bed when ``shadow``."""
    photo, cover = (image, np.ones(image.shape[:2], np.float32)) if not degrees else turned(image, degrees)
    ph, pw = photo.shape[:2]
    big_h, big_w = int(ph * 1.5), int(pw * 1.6)
    grain = cv2.GaussianBlur(rng.normal(0, 0.03, (big_h, big_w)).astype(np.float32), (0, 0), 1.5)
    tint = np.array([page + 0.01, page, page - 0.01], np.float32)  # 0.09: the album page as before
    scan = tint + grain[..., None] + rng.normal(0, 0.008, (big_h, big_w, 1)).astype(np.float32)
    y, x = (big_h - ph) // 3, (big_w - pw) // 2
    if shadow:
        fall = np.zeros((big_h, big_w), np.float32)
        fall[y + 4:y + ph + 4, x + 5:x + pw + 5] = cover
        scan *= (1 - 0.35 * cv2.GaussianBlur(fall, (0, 0), 4))[..., None]
    page_under = scan[y:y + ph, x:x + pw]
    scan[y:y + ph, x:x + pw] = cover[..., None] * photo + (1 - cover[..., None]) * page_under
    return np.clip(scan, 0, 1), (y, x)


# pushed into a corner of the scan or against one side of it
EDGE_KINDS = [f"{layout}_{kind}" for layout in ("corner", "side") for kind in ("white20", "album", "bed")]
EDGE_KINDS.insert(2, "corner_album_skew")
EDGE_KINDS.append("touch_album_skew")
DARK_PAGES = [f"page{p}_turn{t}{s}" for p in (0.08, 0.13, 0.2) for t in (0, 1.5, 3) for s in ("", "_shadow")]
# a scanner's bed as a family scans on it: the shadow's width, on one side or two, the lid's edge
BEDS = [f"scanbed{w}{s}" for w in (5, 15, 30) for s in ("", "_one", "_lid")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights)")
    ap.add_argument("--heldout", action="store_true", help="also the corpus' clean held-out photos")
    ap.add_argument("--edges", action="store_true",
                    help="the prints pushed into a corner of the scan or against one side instead")
    ap.add_argument("--beds", action="store_true",
                    help="the prints on a scanner's bed as scanned at home (shadow, lid's edge) instead")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    restorer = Restorer(weights=args.weights, faces=False, device="cpu", scratches="auto")

    def decide(image: np.ndarray) -> dict[str, object]:
        d = restorer.detect(image)
        return {"evidence": round(d.evidence, 3), "edges": d.edges, "found": d.print_box is not None,
                "repaired": restorer.choose_path(d, d.mask.shape) != "quality"}

    photos = [(p.stem, read_photo(p).pixels, 0) for p in REAL]  # (name, pixels, the surround's seed)
    if args.heldout:
        for i, photo in enumerate(D.load_pool("corpus:heldout", max_side=args.max_side, min_side=64)):
            image = photo.astype(np.float32) / 255.0
            photos += [(f"heldout#{i}", image, i),
                       (f"heldout#{i} gray", np.repeat(D.gray(image)[..., None], 3, axis=2), i)]
    rows: dict[str, dict[str, object]] = {}
    for name, image, seed in photos:
        own = decide(image)
        kinds = ["white20", "album", "album_skew", "bed"]
        kinds += ["white30"] + DARK_PAGES if "scratched" in name else []
        kinds = EDGE_KINDS if args.edges else BEDS if args.beds else kinds
        for kind in kinds:
            row = dict(decide(on_surround(image, kind, seed)), own=own)
            rows[f"{name} {kind}"] = row
            print(f"{name:32s} {kind:18s} evidence {row['evidence']:6.3f} (own {own['evidence']:6.3f})  "
                  f"edges {row['edges']:2d}  {'found' if row['found'] else 'whole'}  "
                  f"{'REPAIRED' if row['repaired'] else 'kept'}"
                  f"{'' if row['repaired'] == own['repaired'] else '  (own: the other way)'}", flush=True)
    same = sum(r["repaired"] == r["own"]["repaired"] for r in rows.values())  # type: ignore[index]
    print(f"{same} of {len(rows)} scans decided as their photo on its own")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
