"""Calibration against published values on the IQA-PyTorch calibration images.

The five TID2013-distorted Kodak images ``ResultsCalibra/dist_dir/I{03,04,06,08,19}.bmp`` and their
references ``ref_dir/`` ship inside the pyiqa wheel (``pip download --no-deps pyiqa``; do not install
it).  The official values are those of ``ResultsCalibra/calibration_summary.csv`` in chaofengc/IQA-PyTorch
(NIQE/BRISQUE: MATLAB originals; LPIPS-alex v0.1 and DISTS: the authors' PyTorch code).  No value is
published there for LPIPS-vgg.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

IMAGES = ("I03", "I04", "I06", "I08", "I19")
OFFICIAL = {
    "niqe": (15.7536, 3.6549, 3.2355, 3.1840, 8.6352),
    "brisque": (94.6421, -0.1076, 0.9929, 5.3583, 72.2617),
    "lpips_alex": (0.7237, 0.2572, 0.0508, 0.0521, 0.4253),
    "dists": (0.4742, 0.1424, 0.0682, 0.0287, 0.3123),
}


def reference_dir(dist_dir: Path) -> Path | None:
    """The ``ref_dir`` beside a ``dist_dir`` when it holds the five references."""
    ref = Path(dist_dir).parent / "ref_dir"
    return ref if all((ref / f"{n}.bmp").is_file() for n in IMAGES) else None


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
                for sub in ("dist_dir", "ref_dir"):
                    zf.extract(f"ResultsCalibra/{sub}/{n}.bmp", cache)
        return cache / "ResultsCalibra" / "dist_dir"
    raise FileNotFoundError(f"{source}: no calibration images (I03…I19.bmp) found; pass the pyiqa wheel "
                            "from `pip download --no-deps pyiqa` or its extracted ResultsCalibra folder")


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.float32) / 255.0


def run(folder: Path, perceptual: bool | None = None) -> list[dict[str, object]]:
    """One row per image: ours, official and the error for NIQE and BRISQUE, and for LPIPS-alex, DISTS
    (and LPIPS-vgg, no official value) when ``perceptual`` (default: when the references are present and
    the weights of ``oldphoto data perception`` are installed)."""
    from oldphoto.metrics.brisque import brisque
    from oldphoto.metrics.niqe import niqe
    from oldphoto.metrics.perception import installed

    refs = reference_dir(folder)
    if perceptual is None:
        perceptual = refs is not None and installed()
    if perceptual and refs is None:
        raise FileNotFoundError(f"{Path(folder).parent / 'ref_dir'}: reference images missing")
    full_ref = []
    if perceptual:
        from oldphoto.metrics.per_image import PERCEPTUAL, build_metrics

        full_ref = build_metrics(PERCEPTUAL)
    rows = []
    for i, n in enumerate(IMAGES):
        image = _read(folder / f"{n}.bmp")
        row: dict[str, object] = {"image": n}
        for name, fn in (("niqe", niqe), ("brisque", brisque)):
            ours, official = fn(image), OFFICIAL[name][i]
            row[name] = ours
            row[f"{name}_official"] = official
            rel = 100.0 * (ours - official) / abs(official) if abs(official) > 1 else None
            row[f"{name}_rel_err_pct"] = rel
            row[f"{name}_abs_err"] = ours - official
        if full_ref:
            reference = _read(refs / f"{n}.bmp")
            for m in full_ref:
                row[m.name] = m.fn(image, reference)
                if m.name in OFFICIAL:
                    row[f"{m.name}_official"] = OFFICIAL[m.name][i]
                    row[f"{m.name}_abs_err"] = row[m.name] - OFFICIAL[m.name][i]
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
    if rows and "lpips_alex" in rows[0]:
        lines += ["", "| image | LPIPS-alex (ours) | LPIPS-alex (official) | DISTS (ours) | DISTS (official) "
                  "| LPIPS-vgg (ours) |", "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['image']} | {r['lpips_alex']:.4f} | {r['lpips_alex_official']:.4f} | "
                         f"{r['dists']:.4f} | {r['dists_official']:.4f} | {r['lpips_vgg']:.4f} |")
    return "\n".join(lines) + "\n"
