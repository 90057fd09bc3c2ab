"""Outputs of the evaluation: CSV/Markdown tables shaped like the paper's, and contact sheets.

All files are written atomically (:func:`oldphoto.files.atomic_write`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from oldphoto.files import atomic_write, atomic_write_text

# column -> (header in the Markdown table, higher is better?)
COLUMN_INFO: dict[str, tuple[str, bool | None]] = {
    "psnr": ("PSNR ↑", True), "ssim": ("SSIM ↑", True),
    "psnr_y": ("PSNR-Y ↑", True), "ssim_y": ("SSIM-Y ↑", True),
    "lpips_alex": ("LPIPS (alex) ↓", False), "lpips_vgg": ("LPIPS (vgg) ↓", False),
    "dists": ("DISTS ↓", False),
    "fid": ("FID ↓", False), "fid_proxy_effnetlite0": ("FID-proxy (EffNet-Lite0) ↓", False),
    "niqe": ("NIQE ↓", False), "brisque": ("BRISQUE ↓", False),
    "wasserstein": ("Wasserstein ↓", False), "wasserstein_sliced": ("Sliced Wasserstein ↓", False),
    "identity": ("Face identity dist. ↓", False), "auc": ("AUC ↑", True),
    "n": ("images", None), "seconds_per_image": ("s / image", None),
}


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write_text(path, text)


def _cell(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def write_csv(path: str | Path, rows: Sequence[dict[str, object]], columns: Sequence[str]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(c), 6) for c in columns])

    atomic_write(path, write)
    return Path(path)


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str], label_column: str = "method",
                   highlight_best: bool = True) -> str:
    """Markdown table, one row per entry; the best value of each ↑/↓ column is bold (as in the paper)."""
    metric_cols = [c for c in columns if c != label_column]
    best: dict[str, float] = {}
    if highlight_best:
        for c in metric_cols:
            better = COLUMN_INFO.get(c, (c, None))[1]
            vals = [float(r[c]) for r in rows if isinstance(r.get(c), (int, float)) and math.isfinite(r[c])]
            if better is not None and len(vals) > 1:
                best[c] = max(vals) if better else min(vals)
    header = [label_column.capitalize()] + [COLUMN_INFO.get(c, (c, None))[0] for c in metric_cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r.get(label_column, ""))]
        for c in metric_cols:
            v = r.get(c)
            text = _cell(v, 3 if c in ("ssim", "ssim_y", "auc") else 2 if c not in ("lpips_alex", "lpips_vgg",
                         "dists", "wasserstein", "wasserstein_sliced", "identity") else 3)
            if c in best and isinstance(v, (int, float)) and v == best[c]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def transposed_markdown(rows: Sequence[dict[str, object]], metrics: Sequence[str],
                        label_column: str = "method") -> str:
    """Paper Table 4 layout: methods as columns, metrics as rows."""
    names = [str(r[label_column]) for r in rows]
    lines = ["| Method | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for m in metrics:
        lines.append(f"| {COLUMN_INFO.get(m, (m, None))[0]} | "
                     + " | ".join(_cell(r.get(m), 3) for r in rows) + " |")
    return "\n".join(lines) + "\n"


def _fit(image: np.ndarray, tile: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    scale = tile / max(h, w)
    pil = Image.fromarray(np.clip(np.round(np.asarray(image, np.float32)[..., :3] * 255), 0, 255)
                          .astype(np.uint8))
    pil = pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    arr = np.asarray(pil)
    y0, x0 = (tile - arr.shape[0]) // 2, (tile - arr.shape[1]) // 2
    canvas[y0:y0 + arr.shape[0], x0:x0 + arr.shape[1]] = arr
    return canvas


def contact_sheet(rows: Sequence[Sequence[tuple[str, np.ndarray | None]]], path: str | Path, tile: int = 256,
                  title: str | None = None) -> Path:
    """PNG grid: one row per photo, one labelled column per (label, image); ``None`` leaves a blank cell."""
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise ValueError("contact sheet needs at least one row")
    ncols = max(len(r) for r in rows)
    label_h, pad = 18, 4
    top = 22 if title else 0
    width = ncols * (tile + pad) + pad
    height = top + len(rows) * (tile + label_h + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((pad, 4), title, fill=(0, 0, 0), font=font)
    for ri, row in enumerate(rows):
        y = top + pad + ri * (tile + label_h + pad)
        for ci, (label, image) in enumerate(row):
            x = pad + ci * (tile + pad)
            draw.text((x + 2, y + 2), label[:40], fill=(0, 0, 0), font=font)
            if image is not None:
                sheet.paste(Image.fromarray(_fit(image, tile)), (x, y + label_h))
    atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG"))
    return Path(path)
