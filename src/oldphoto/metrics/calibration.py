"""NIQE / BRISQUE calibration against the official values on the IQA-PyTorch calibration images.

The five TID2013-distorted Kodak images ``ResultsCalibra/dist_dir/I{03,04,06,08,19}.bmp`` ship inside the
pyiqa wheel (``pip download --no-deps pyiqa``; do not install it).  The official values are those of
``ResultsCalibra/calibration_summary.csv`` in chaofengc/IQA-PyTorch (MATLAB originals).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

IMAGES = ("I03", "I04", "I06", "I08", "I19")
OFFICIAL = {
    "niqe": (15.7536, 3.6549, 3.2355, 3.1840, 8.6352),
    "brisque": (94.6421, -0.1076, 0.9929, 5.3583, 72.2617),
}


def locate(source: Path, cache: Path | None = None) -> Path:
    """The ``dist_dir`` folder: given directly, inside a ResultsCalibra folder, or extracted from a wheel."""
    source = Path(source)
    for cand in (source, source / "dist_dir", source / "ResultsCalibra" / "dist_dir"):
        if all((cand / f"{n}.bmp").is_file() for n in IMAGES):
            return cand
    if source.is_file() and source.suffix in (".whl", ".zip"):
        cache = cache or Path.home() / ".cache" / "oldphoto"
        with zipfile.ZipFile(source) as zf:
            for n in IMAGES:
                zf.extract(f"ResultsCalibra/dist_dir/{n}.bmp", cache)
        return cache / "ResultsCalibra" / "dist_dir"
    raise FileNotFoundError(f"{source}: no calibration images (I03…I19.bmp) found; pass the pyiqa wheel "
                            "from `pip download --no-deps pyiqa` or its extracted ResultsCalibra folder")


def run(folder: Path) -> list[dict[str, object]]:
    from PIL import Image

    from oldphoto.metrics.brisque import brisque
    from oldphoto.metrics.niqe import niqe

    rows = []
    for i, n in enumerate(IMAGES):
        with Image.open(folder / f"{n}.bmp") as im:
            image = np.asarray(im.convert("RGB"), np.float32) / 255.0
        row: dict[str, object] = {"image": n}
        for name, fn in (("niqe", niqe), ("brisque", brisque)):
            ours, official = fn(image), OFFICIAL[name][i]
            row[name] = ours
            row[f"{name}_official"] = official
            rel = 100.0 * (ours - official) / abs(official) if abs(official) > 1 else None
            row[f"{name}_rel_err_pct"] = rel
            row[f"{name}_abs_err"] = ours - official
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| image | NIQE (ours) | NIQE (official) | rel. err | BRISQUE (ours) | BRISQUE (official) "
             "| abs. err |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = r["niqe_rel_err_pct"]
        lines.append(f"| {r['image']} | {r['niqe']:.4f} | {r['niqe_official']:.4f} | {rel:+.2f} % | "
                     f"{r['brisque']:.3f} | {r['brisque_official']:.3f} | {r['brisque_abs_err']:+.3f} |")
    return "\n".join(lines) + "\n"
