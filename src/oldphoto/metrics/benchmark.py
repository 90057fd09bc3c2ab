"""``oldphoto evaluate benchmark``: all methods on the benchmark sets, in the form of the paper's tables.

Sets
- ``synthetic_unstructured`` / ``synthetic_mixed``: held-out clean photos degraded by ``oldphoto.synth``
  (``DegradeConfig(kind="unstructured")`` / ``kind="mixed"`` with scratches), seed ``seed + index``, so
  a run is reproducible; full-reference and no-reference metrics.
- ``real_old``: real old photos, no-reference metrics only.

Methods are callables ``(image, mask_or_None) -> image`` (float RGB in [0, 1]).  Built in: the degraded
input, the classical pipeline (NLM + Telea on the classically detected mask), our restorer with the
bundled weights, and the restorer with imported official weights when installed; the last two are skipped
with a message when ``oldphoto.pipeline`` or the weights are missing.

Outputs in ``out_dir``: ``per_image.csv``, ``table2_<set>.{md,csv}`` (Table 2 shape: methods × metrics),
``table4.{md,csv}`` (Table 4 shape: metrics × methods on real old photos, with the latent Wasserstein
distance when a VAE-A encoder is available), ``sheets/<set>_NN.png`` contact sheets, ``report.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from oldphoto.cli import show_progress
from oldphoto.metrics import report
from oldphoto.metrics.harness import Method, Sample, mean_row, score_set
from oldphoto.metrics.per_image import Metric


class MethodUnavailable(RuntimeError):
    """A method cannot run here (missing module or weights); the message says why."""


@dataclass
class BenchmarkResult:
    rows: list[dict[str, object]] = field(default_factory=list)  # per image × method
    tables: dict[str, list[dict[str, object]]] = field(default_factory=dict)  # set -> method rows
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ inputs
def fit_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (area) so that the longer side is at most ``max_side``; sizes rounded to multiples of 8."""
    import cv2

    h, w = image.shape[:2]
    scale = 1.0 if not max_side or max(h, w) <= max_side else max_side / max(h, w)
    nh, nw = max(8, int(h * scale) // 8 * 8), max(8, int(w * scale) // 8 * 8)
    if (nh, nw) == (h, w):
        return np.asarray(image, np.float32)
    if scale < 1.0:
        image = cv2.resize(np.asarray(image, np.float32), (int(w * scale), int(h * scale)),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.asarray(image, np.float32)[:nh, :nw])


def read_image(path: Path) -> np.ndarray:
    """Float RGB in [0, 1] as ``oldphoto restore`` reads it (orientation, colour management)."""
    from oldphoto.io import read_photo

    return read_photo(path).pixels


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    from oldphoto.io import IMAGE_EXTENSIONS

    # hidden files are skipped as `oldphoto restore` skips them: macOS leaves "._a.png" resource forks
    # beside every photo copied to a foreign disk, and they are not images
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def builtin_heldout_clean() -> list[tuple[str, np.ndarray]]:
    """The held-out CC0 scikit-image photos of the corpus split (tiny; use a corpus for real runs)."""
    from oldphoto.synth.corpus import split_of
    from oldphoto.synth.sources import skimage_photos

    return [(Path(f.name).stem, f.load()) for f in skimage_photos()
            if split_of(f"skimage/{f.name}") == "heldout"]


def synthetic_set(clean: Sequence[tuple[str, np.ndarray]], kind: str, seed: int,
                  degrade_fn: Callable[..., object] | None = None) -> list[Sample]:
    """Degrade each clean photo with the project's synthesis at seed ``seed + index``."""
    if degrade_fn is None:
        from oldphoto.synth.degrade import DegradeConfig, degrade

        config = DegradeConfig(kind=kind)

        def degrade_fn(image, rng):
            return degrade(image, rng, config)

    out = []
    for i, (name, image) in enumerate(clean):
        d = degrade_fn(image, seed + i)
        out.append(Sample(name, d.degraded, d.clean, d.mask))
    return out


# ------------------------------------------------------------------------------------------ methods
def restorer_method(weights_dir: Path | None, **overrides: object) -> Method:
    """``oldphoto.pipeline.Restorer`` on one weights folder as a method (raises MethodUnavailable)."""
    try:
        from oldphoto.pipeline import Restorer
    except ImportError as exc:
        raise MethodUnavailable(f"oldphoto.pipeline is not available ({exc})") from exc
    try:
        restorer = Restorer(weights=weights_dir, **overrides)
    except Exception as exc:  # noqa: BLE001 - missing/broken weights: skip this method with the reason
        raise MethodUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def run(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return restorer.restore(image).image

    run.model_info = getattr(restorer, "model_info", lambda: {})  # type: ignore[attr-defined]
    return run


def official_weights_dir() -> Path | None:
    """The user weights folder when it holds imported official weights, else None.

    Only a role of the official release counts: a folder holding just the Real-ESRGAN upscaler (or the
    perception networks) would restore with the bundled weights and be reported as "official"."""
    try:
        from oldphoto.weights import OFFICIAL_SOURCES, default_weights_dir, installed
    except ImportError:
        return None
    folder = default_weights_dir()
    try:
        official = folder.is_dir() and any(card.role in OFFICIAL_SOURCES for card in installed(folder))
        return folder if official else None
    except Exception:  # noqa: BLE001 - unreadable folder: treat as not installed
        return None


def default_methods(names: Sequence[str], notes: list[str]) -> dict[str, Method]:
    from oldphoto.metrics.baselines import classical_restore, degraded_input

    methods: dict[str, Method] = {}
    for name in names:
        try:
            if name == "input":
                methods["Input"] = degraded_input
            elif name == "classical":
                methods["Classical (NLM + Telea)"] = classical_restore
            elif name == "ours":
                from oldphoto.weights import bundled_weights_dir

                methods["Ours (bundled weights)"] = restorer_method(bundled_weights_dir())
            elif name == "official":
                folder = official_weights_dir()
                if folder is None:
                    raise MethodUnavailable("no imported official weights (run `oldphoto weights download`"
                                            " or `oldphoto weights import global_checkpoints.zip ...`)")
                methods["Ours (official weights)"] = restorer_method(folder)
            else:
                raise ValueError(f"unknown method {name!r} (input, classical, ours, official)")
        except MethodUnavailable as exc:
            notes.append(f"method '{name}' skipped: {exc}")
    return methods


# ------------------------------------------------------------------------------------------ latents
def vae_latents(images: Sequence[np.ndarray], weights_dir: Path | None, per_image: int, seed: int
                ) -> np.ndarray:
    """Latent vectors (one per latent position, ``per_image`` sampled positions per photo) of VAE A."""
    import torch

    from oldphoto.tensors import image_to_tensor
    from oldphoto.weights import load_model

    vae = load_model("vae_a", weights_dir)
    rng = np.random.default_rng(seed)
    rows = []
    with torch.no_grad():
        for image in images:
            h, w = image.shape[:2]
            z = vae.encode(image_to_tensor(image[: h // 4 * 4, : w // 4 * 4]))
            z = z[0].flatten(1).T.numpy()  # positions × channels
            rows.append(z[rng.choice(len(z), size=min(per_image, len(z)), replace=False)])
    return np.concatenate(rows)


def latent_table(real_old: Sequence[np.ndarray], synthetic: Sequence[np.ndarray],
                 weights: dict[str, Path | None], seed: int, notes: list[str]) -> dict[str, dict[str, float]]:
    from oldphoto.metrics.latent import sliced_wasserstein, wasserstein_exact

    out: dict[str, dict[str, float]] = {}
    for label, folder in weights.items():
        try:
            a = vae_latents(real_old, folder, 256, seed)
            b = vae_latents(synthetic, folder, 256, seed + 1)
        except Exception as exc:  # noqa: BLE001 - no VAE A: the row stays empty, with the reason
            notes.append(f"latent Wasserstein for '{label}' skipped: {type(exc).__name__}: {exc}")
            continue
        n = min(len(a), len(b), 1024)
        rng = np.random.default_rng(seed)
        a_s, b_s = a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]
        out[label] = {"wasserstein": wasserstein_exact(a_s, b_s),
                      "wasserstein_sliced": sliced_wasserstein(a, b, seed=seed)}
    return out


# ------------------------------------------------------------------------------------------ detector ROC
def detector_roc(samples: Sequence[Sample], weights: dict[str, Path | None], out_dir: Path,
                 notes: list[str]) -> dict[str, float]:
    """Pixel ROC of each detector (and of the classical mask, a single operating point) against the
    synthetic defect masks (paper Fig. 6): writes ``fig6_roc.png`` / ``fig6_roc.md``; returns label -> AUC."""
    from oldphoto.metrics.baselines import classical_scratch_mask
    from oldphoto.metrics.roc import auc, pixels_from_masks, plot_roc, roc_curve

    masks = [s.mask for s in samples if s.mask is not None]
    if len(masks) != len(samples) or not any(np.asarray(m).any() for m in masks):
        notes.append("detector ROC skipped: the set has no defect masks")
        return {}
    curves = {}
    s, y = pixels_from_masks([classical_scratch_mask(x.degraded).astype(np.float32) for x in samples], masks)
    curves["classical top-hat mask"] = roc_curve(s, y)[:2]
    for label, folder in weights.items():
        try:
            from oldphoto.pipeline import Restorer
            from oldphoto.weights import load_model

            # the pipeline's own detector pass (only the detector is needed, so it is passed explicitly)
            restorer = Restorer(models={"detector": load_model("detector", folder)}, faces=False)
        except Exception as exc:  # noqa: BLE001 - no detector weights: only the classical curve
            notes.append(f"detector ROC for '{label}' skipped: {type(exc).__name__}: {exc}")
            continue
        s, y = pixels_from_masks([restorer.probabilities(x.degraded) for x in samples], masks)
        curves[label] = roc_curve(s, y)[:2]
    plot_roc(curves, out_dir / "fig6_roc.png", title="Defect detection ROC (synthetic_mixed)")
    aucs = {k: auc(*v) for k, v in curves.items()}
    lines = ["| detector | AUC ↑ |", "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in aucs.items()]
    report.write_text(out_dir / "fig6_roc.md", "\n".join(lines) + "\n")
    return aucs


# ------------------------------------------------------------------------------------------ run
@dataclass
class DistributionMetric:
    name: str
    extractor: Callable[[np.ndarray], np.ndarray]


def run_benchmark(sets: dict[str, list[Sample]], methods: dict[str, Method], metrics: list[Metric],
                  out_dir: Path, distribution: Sequence[DistributionMetric] = (), progress: bool = True,
                  sheet_rows: int = 4, notes: list[str] | None = None,
                  latents: dict[str, dict[str, float]] | None = None) -> BenchmarkResult:
    from tqdm import tqdm

    from oldphoto.metrics.fid import frechet_from_features

    out_dir = Path(out_dir)
    result = BenchmarkResult(notes=list(notes or []))
    total = sum(len(s) for s in sets.values()) * len(methods)
    bar = tqdm(total=total, desc="evaluate", unit="img", file=sys.stderr,
               disable=not show_progress(progress))
    errors: dict[str, str] = {}
    for set_name, samples in sets.items():
        scores = score_set(samples, methods, metrics, errors, on_image=lambda: bar.update(1))
        per_method, outputs = scores.rows, scores.outputs
        for i in range(len(samples)):  # image by image, as they ran
            for m in methods:
                result.rows.append({"set": set_name} | per_method[m][i])
        # distribution metrics: outputs against the clean targets of the set (synthetic sets only)
        cleans = [s.clean for s in samples if s.clean is not None]
        dist_values: dict[str, dict[str, float]] = {m: {} for m in methods}
        if len(cleans) == len(samples) and len(samples) >= 2:
            for dm in distribution:
                ref = np.stack([dm.extractor(c) for c in cleans])
                for m in methods:
                    dist_values[m][dm.name] = frechet_from_features(
                        np.stack([dm.extractor(o) for o in outputs[m]]), ref)
        table = []
        for m in methods:
            rows = per_method[m]
            entry: dict[str, object] = {"method": m, "n": len(rows)}
            entry.update(mean_row(rows, metrics))  # NaN: undefined on that image (see notes)
            entry.update(dist_values[m])
            if rows:
                entry["seconds_per_image"] = float(np.median([float(r["seconds"]) for r in rows]))
            if latents and set_name == "real_old" and m in latents:
                entry.update(latents[m])
            table.append(entry)
        result.tables[set_name] = table
        _write_sheets(set_name, samples, outputs, out_dir / "sheets", sheet_rows, result)
    bar.close()
    result.notes += [f"{name}: undefined on some images (left blank): {msg}" for name, msg in errors.items()]
    _write_tables(result, metrics, distribution, out_dir)
    return result


def _write_sheets(set_name: str, samples: list[Sample], outputs: dict[str, list[np.ndarray]], folder: Path,
                  per_sheet: int, result: BenchmarkResult) -> None:
    for start in range(0, len(samples), per_sheet):
        rows = []
        for i in range(start, min(start + per_sheet, len(samples))):
            s = samples[i]
            row: list[tuple[str, np.ndarray | None]] = [(f"input: {s.name}", s.degraded)]
            row += [(m, outputs[m][i]) for m in outputs if m != "Input"]
            if s.clean is not None:
                row.append(("ground truth", s.clean))
            rows.append(row)
        path = folder / f"{set_name}_{start // per_sheet:02d}.png"
        result.files.append(report.contact_sheet(rows, path, title=f"{set_name}: input | methods | truth"))


def _write_tables(result: BenchmarkResult, metrics: list[Metric], distribution: Sequence[DistributionMetric],
                  out_dir: Path) -> None:
    metric_names = [m.name for m in metrics]
    cols = ["set", "file", "method", *metric_names, "seconds"]
    result.files.append(report.write_csv(out_dir / "per_image.csv", result.rows, cols))
    md = ["# Benchmark report", ""]
    for set_name, table in result.tables.items():
        full_ref = set_name != "real_old"
        names = [n for n in metric_names if full_ref or n in ("niqe", "brisque")]
        names += [d.name for d in distribution] if full_ref else []
        columns = ["method", *[n for n in names if any(n in r for r in table)], "n", "seconds_per_image"]
        if full_ref:
            result.files.append(report.write_csv(out_dir / f"table2_{set_name}.csv", table, columns))
            text = report.markdown_table(table, columns)
            result.files.append(report.write_text(out_dir / f"table2_{set_name}.md", text))
            md += [f"## {set_name} (Table 2 layout)", "", text]
        else:
            t4 = [m for m in ("wasserstein", "wasserstein_sliced", "brisque", "niqe")
                  if any(m in r for r in table)]
            result.files.append(report.write_csv(out_dir / "table4.csv", table, ["method", *t4, "n"]))
            text = report.transposed_markdown(table, t4)
            result.files.append(report.write_text(out_dir / "table4.md", text))
            md += ["## real old photos (Table 4 layout)", "", text]
    if result.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    md += ["Proxy metrics (`*_proxy_*`) use offline substitute networks and are not comparable with "
           "published FID values. FID-style values on a few images are strongly biased; compare "
           "methods only within one run.", ""]
    result.files.append(report.write_text(out_dir / "report.md", "\n".join(md)))
