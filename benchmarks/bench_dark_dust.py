"""``--dark-dust``'s finder alone: what dust it finds, and what of the writing and the scene it takes.

* **synthetic dust**: six clean photos (scikit-image's astronaut, coffee, chelsea and rocket, two of the
  corpus), fitted to 1000 px, in colour and in gray, each with 60 dark specks 2-8 px across (irregular,
  near-black or dark brown, 60-100 % opaque) and 4 fibres: the specks the finder touches (by size), the
  fibres it touches, the specks it finds away from the dust, and those it finds on the clean photo;
* **writing**: a page of print (10-18 px, DejaVu) and script, and a caption (10-24 px, with runs of
  punctuation) under a photo: the pieces of ink it touches (each a connected region of ink);
* **scene**: the specks it finds on the seven photos of ``examples/`` and 30 clean corpus photos, and
  which of 17 named points of their scene (knots, distant people, finials, loopholes, birds, a ceiling's
  seams; listed in ``POINTS``) it takes.

The corpus (``OLDPHOTO_CORPUS``, ``oldphoto data build``) gives the scene photos; without it only the
first two parts run.

    OLDPHOTO_CORPUS=... PYTHONPATH=src python benchmarks/bench_dark_dust.py
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from oldphoto.luma import luma
from oldphoto.stages.dust import find_dust
from oldphoto.stages.tone import fit_tone

ROOT = Path(__file__).resolve().parents[1]
FONTS = Path("/usr/share/fonts/truetype/dejavu")
SCENE = [
    "Wood",
    "Dune",
    "BytheWater",
    "Kite",
    "friends_by_Aitzol_Berasategi",
    "explore_monuments__colosseum",
    "explore_monuments__eiffelTower",
    "explore_monuments__greatWallofChina",
    "explore_monuments__tajMahal",
    "explore_monuments__brandenburgGate",
    "explore_monuments__charminar",
    "explore_monuments__hawaMahal",
    "erase__spoonbills",
    "erase__swans",
    "explore_world_music__orchestra",
    "erase__camels",
    "explore_farm_animals__sheep",
    "clickgame__sea1",
    "explore_monuments__montStMichel",
    "explore_monuments__machuPicchu",
    "china",
    "hdr_room",
    "coins",
    "camera",
    "explore_world_music__africa",
    "explore_monuments__lincolnMemorial",
    "explore_monuments__statueofLiberty",
    "erase__northern_harrier",
    "Bridge_by_Sander_Klootwijk",
    "pexels-4400637",
]
# (row, column) of the scene's dark dots, on the photo fitted to 1024 px when larger than 1100 (castle: 1000)
POINTS = {
    "hdr_room": [(30, 300), (30, 350), (30, 390), (408, 275), (443, 347)],  # ceiling seams, floor knots
    "explore_monuments__machuPicchu": [(446, 826), (300, 583), (446, 445)],  # distant people
    "explore_monuments__tajMahal": [(346, 664), (287, 488), (345, 384), (496, 701)],  # finials, birds
    "explore_monuments__greatWallofChina": [(614, 229), (619, 246)],  # loopholes
    "castle-maintenon": [(146, 756), (289, 370), (61, 180)],
}  # a weather vane, a spire's tip, a finial


def fitted(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return image
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def read(path: Path, side: int = 1000) -> np.ndarray:
    return fitted(np.asarray(Image.open(path).convert("RGB"), np.float32) / 255, side)


def finder(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The finder as ``--dark-dust`` runs it on a photo without faces (colour unless gray or toned)."""
    return find_dust(luma(image), None if fit_tone(image) is not None else image, dark=True)


def speck(rng: np.random.Generator, d: int) -> np.ndarray:
    """An irregular speck about ``d`` px across: opacity in [0, 1] on a ``(d+6)²`` canvas."""
    n = d + 6
    m = np.zeros((n, n), np.float32)
    for _ in range(rng.integers(1, 4)):
        r = max(0.7, d / 2 * rng.uniform(0.5, 1.0))
        ox, oy = rng.uniform(-d / 4, d / 4, 2)
        axes = (max(1, int(r * rng.uniform(0.6, 1.2) * 16)), max(1, int(r * rng.uniform(0.6, 1.2) * 16)))
        cv2.ellipse(
            m,
            (int((n / 2 + ox) * 16), int((n / 2 + oy) * 16)),
            axes,
            rng.uniform(0, 180),
            0,
            360,
            1.0,
            -1,
            cv2.LINE_AA,
            4,
        )
    return np.clip(cv2.GaussianBlur(m, (0, 0), 0.5), 0, 1)


def dust_colour(rng: np.random.Generator, gray: bool) -> np.ndarray:
    c = (
        np.full(3, rng.uniform(0.02, 0.08))
        if rng.random() < 0.5
        else np.array([0.28, 0.17, 0.08]) * rng.uniform(0.6, 1)
    )
    return np.full(3, c.mean(), np.float32) if gray else c.astype(np.float32)


def dusty(clean: np.ndarray, rng: np.random.Generator, gray: bool) -> tuple[np.ndarray, list, np.ndarray]:
    """``clean`` with 60 dark specks (opacity, (row, column), size) and 4 fibres (their opacity)."""
    h, w = clean.shape[:2]
    out = clean.copy()
    specks: list = []
    for _ in range(10000):
        if len(specks) == 60:
            break
        d = int(rng.integers(2, 9))
        a = speck(rng, d) * rng.uniform(0.6, 1.0)
        n = a.shape[0]
        y, x = int(rng.integers(10, h - n - 10)), int(rng.integers(10, w - n - 10))
        if any(abs(y - s[1][0]) < 20 and abs(x - s[1][1]) < 20 for s in specks):
            continue
        out[y : y + n, x : x + n] = (
            out[y : y + n, x : x + n] * (1 - a[..., None]) + dust_colour(rng, gray) * a[..., None]
        )
        specks.append((a, (y, x), d))
    fibres = np.zeros((h, w), np.float32)
    for _ in range(4):
        p, angle, points = (
            np.array([rng.uniform(50, w - 50), rng.uniform(50, h - 50)]),
            rng.uniform(0, 2 * np.pi),
            [],
        )
        for _ in range(int(rng.integers(30, 120))):
            angle += rng.normal(0, 0.15)
            p = p + [np.cos(angle), np.sin(angle)]
            points.append(p * 16)
        line = np.zeros((h, w), np.float32)
        cv2.polylines(
            line, [np.array(points).astype(np.int32)], False, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA, 4
        )
        fibres = np.maximum(fibres, line * rng.uniform(0.6, 0.9))
    out = out * (1 - fibres[..., None]) + dust_colour(rng, gray) * fibres[..., None]
    return out.astype(np.float32), specks, fibres


def synthetic_dust(corpus: Path | None) -> None:
    import skimage.data

    photos = {
        name: Path(skimage.data.__file__).parent / f"{name}.{ext}"
        for name, ext in (("astronaut", "png"), ("coffee", "png"), ("chelsea", "png"), ("rocket", "jpg"))
    }
    if corpus is not None:
        for name in ("castle-maintenon", "BytheWater"):
            photos[name] = next(corpus.rglob(f"{name}.jpg"))
    touched = {(2, 3): [0, 0], (4, 5): [0, 0], (6, 8): [0, 0]}
    fibres_touched = fibres_n = away = on_clean = 0
    for gray in (False, True):
        for i, path in enumerate(photos.values()):
            clean = read(path)
            if gray:
                clean = np.repeat(luma(clean)[..., None], 3, 2).astype(np.float32)
            image, specks, fibres = dusty(clean, np.random.default_rng(100 + i), gray)
            found, _ = finder(image)
            near = fibres > 0.05
            for a, (y, x), d in specks:
                n = a.shape[0]
                near[y : y + n, x : x + n] |= a > 0.05
                size = next(s for s in touched if s[0] <= d <= s[1])
                touched[size][0] += bool(found[y : y + n, x : x + n][a > 0.3].any())
                touched[size][1] += 1
            k, labels = cv2.connectedComponents((fibres > 0.05).astype(np.uint8))
            fibres_touched += sum(bool(found[labels == j].any()) for j in range(1, k))
            fibres_n += k - 1
            near = cv2.dilate(near.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            k, labels = cv2.connectedComponents(found.astype(np.uint8))
            away += sum(1 for j in range(1, k) if not near[labels == j].any())
            on_clean += finder(clean)[1]
    total = [sum(v[0] for v in touched.values()), sum(v[1] for v in touched.values())]
    sizes = ", ".join(f"{lo}-{hi} px {t}/{n}" for (lo, hi), (t, n) in touched.items())
    print(
        f"| synthetic dust ({len(photos)} photos, colour and gray) | specks touched {total[0]}/{total[1]} "
        f"({sizes}); "
        f"fibres {fibres_touched}/{fibres_n}; specks found away from the dust {away}, on the clean photos "
        f"{on_clean} |",
        flush=True,
    )


def write(image: np.ndarray, lines: list, ink: tuple[int, int, int] = (30, 25, 40)) -> np.ndarray:
    """``lines`` of ((x, y), text, font, size) written on ``image``: DejaVu fonts, or OpenCV's script."""
    pil = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for (x, y), text, font, size in lines:
        if font != "script":
            draw.text((x, y), text, fill=ink, font=ImageFont.truetype(str(FONTS / font), size))
    u8 = np.asarray(pil).copy()
    for (x, y), text, font, size in lines:
        if font == "script":
            cv2.putText(u8, text, (x, y + 20), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, size, ink, 1, cv2.LINE_AA)
    return u8.astype(np.float32) / 255


def writing() -> None:
    if not (FONTS / "DejaVuSans.ttf").exists():
        print(f"| writing | not measured: no DejaVu fonts in {FONTS} |")
        return
    import skimage.data

    rng = np.random.default_rng(11)

    def paper(h: int, w: int, tone: tuple[float, float, float]) -> np.ndarray:
        p = np.ones((h, w, 3), np.float32) * np.array(tone, np.float32)
        p += rng.normal(0, 1.5 / 255, (h, w, 1)).astype(np.float32)
        return p + cv2.GaussianBlur(rng.normal(0, 4 / 255, (h, w)).astype(np.float32), (0, 0), 3)[..., None]

    words = (
        "Die Aufnahme zeigt die Familie i. J. 1931 vor dem Haus in der Lindenstr. 4; links: Tante Ida, "
        "rechts: Onkel Fritz, i. d. Mitte die Kinder Lili, Jiri und Ilja. Vgl. S. 12, Anm. 3. - Siehe auch: "
        "Bd. ii, Taf. iv, Nr. 17 (ca. 1930). i.j.k.l; : , . ! ?"
    ).split()
    lines, y = [], 20
    for size in (10, 11, 12, 13, 14, 16, 18):
        for rep in range(3):
            font = "DejaVuSerif.ttf" if rep % 2 else "DejaVuSans.ttf"
            lines.append(((20, y), " ".join(rng.choice(words, 9)), font, size))
            y += int(size * 1.6)
    for scale in (0.7, 0.9, 1.1):
        for _ in range(2):
            lines.append(((20, y), " ".join(rng.choice(words, 6)), "script", scale))
            y += int(34 * scale)
    page = paper(900, 700, (0.93, 0.91, 0.85))
    caption = [
        ((20, 0), "Roma, 12. Juli 1931: Villa d'Este; i.e. Tivoli - fine! (No. 17)", "DejaVuSerif.ttf", 24),
        (
            (20, 36),
            "Tante Emilie, Onkel Fritz, Ida & Lili; Sept. 9, 1931.  jij.ii:i;i,",
            "DejaVuSans.ttf",
            14,
        ),
        (
            (20, 58),
            "Photographie: A. Durr, Wien i. Bez., Nr. 4711. - gez. v. d. Lippe; ok. ija. :; ., ",
            "DejaVuSans.ttf",
            11,
        ),
        ((20, 76), "small print: isi.i.j.  Fig. 3, p. 12; a.m. ; ! ? i. j. ,", "DejaVuSerif.ttf", 10),
        ((20, 88), "Mit herzlichen Gruessen, Deine Lili. 1931 - i.j.", "script", 1.0),
    ]
    photo = fitted(skimage.data.chelsea().astype(np.float32) / 255, 760)
    h = photo.shape[0]
    card = paper(h + 140, photo.shape[1], (0.96, 0.94, 0.88))
    card[:h] = photo
    for name, (image, text) in {
        "a page of print (10-18 px) and script": (page, lines),
        "a caption (10-24 px) under a photo": (
            card,
            [((x, h + 10 + y), t, f, s) for (x, y), t, f, s in caption],
        ),
    }.items():
        written = write(image, text)
        ink = np.abs(written - image).max(2) > 0.08
        found, _ = finder(written)
        k, labels = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
        near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        hit = np.unique(labels[found & near_ink])
        print(f"| {name} | pieces of ink touched {np.count_nonzero(hit)}/{k - 1} |", flush=True)


def scene(corpus: Path) -> None:
    paths = sorted((ROOT / "examples" / "real_old").glob("*.png")) + [ROOT / "examples" / "solvay_1927.jpg"]
    paths += [next(corpus.rglob(f"{name}.jpg")) for name in SCENE]
    total = 0
    taken = []
    for path in paths:
        image = read(path, 10**6)
        image = fitted(image, 1024) if max(image.shape[:2]) > 1100 else image  # (the review's sizes)
        found, count = finder(image)
        total += count
        for y, x in POINTS.get(path.stem, []):
            if found[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5].any():
                taken.append(f"{path.stem} ({x}, {y})")
    found, _ = finder(read(next(corpus.rglob("castle-maintenon.jpg"))))
    for y, x in POINTS["castle-maintenon"]:
        if found[max(0, y - 6) : y + 7, max(0, x - 6) : x + 7].any():
            taken.append(f"castle-maintenon ({x}, {y})")
    n_points = sum(len(p) for p in POINTS.values())
    print(
        f"| scene: {len(paths)} photos | specks found {total}; named points taken {len(taken)}/{n_points}: "
        f"{', '.join(taken)} |",
        flush=True,
    )


def main() -> None:
    root = os.environ.get("OLDPHOTO_CORPUS")
    corpus = Path(root) / "clean" if root else None
    print("| case | figures |\n|---|---|")
    synthetic_dust(corpus)
    writing()
    if corpus is not None:
        scene(corpus)
    else:
        print("| scene | not measured: OLDPHOTO_CORPUS is not set |")


if __name__ == "__main__":
    main()
