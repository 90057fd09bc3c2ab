"""``oldphoto synth INPUT... -o OUT``: preview the degradation synthesis on your own photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from oldphoto.files import atomic_write_bytes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesise old-photo degradations (preview of the training data)",
        description="Degrade clean photos the way training does and write degraded / clean / mask images. "
                    "Deterministic for a seed.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="clean photo(s)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--count", type=int, default=1, help="samples per input (default 1)")
    p.add_argument("--kind", default="mixed", choices=["mixed", "unstructured", "oldlook", "structured"],
                   help="which degradations: mixed (all, default), unstructured (paper's global ops), "
                        "oldlook (global + fading/tint/grain), structured (scratches, dust, holes, creases)")
    p.add_argument("--size", type=int, default=0,
                   help="random SIZE×SIZE crop first (e.g. 256, as in training); 0 = whole photo")
    p.add_argument("--max-side", type=int, default=1024,
                   help="downscale whole photos to this longer side first (default 1024; 0 = never)")
    p.add_argument("--sheet", action="store_true",
                   help="write one side-by-side image (degraded | clean | mask) per sample instead of three")
    p.set_defaults(func=run)


def _write(path: Path, image) -> None:
    """Atomic PNG/JPEG write of a float image (H×W×3 or H×W) in [0, 1]."""

    import cv2
    import numpy as np

    u8 = (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    if u8.ndim == 3:
        u8 = u8[:, :, ::-1]
    ok, buf = cv2.imencode(path.suffix, u8)
    if not ok:
        raise OSError(f"{path}: cannot encode")
    atomic_write_bytes(path, buf.tobytes())


def side_by_side(degraded, clean, mask, gap: int = 4):
    """``degraded | clean | mask`` on one white-separated canvas (float32 RGB)."""
    import numpy as np

    h, w = clean.shape[:2]
    white = np.ones((h, gap, 3), np.float32)
    m = np.repeat(mask[:, :, None].astype(np.float32), 3, axis=2)
    return np.concatenate([degraded, white, clean, white, m], axis=1)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from oldphoto.synth.corpus import CorpusError, load_image, random_crop
    from oldphoto.synth.degrade import DegradeConfig, degrade

    if args.count < 1:
        print("oldphoto synth: error: --count must be at least 1")
        return 2
    config = DegradeConfig(kind=args.kind)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for i, path in enumerate(args.inputs):
        try:
            image = load_image(path)
        except CorpusError as exc:
            print(f"oldphoto synth: error: {exc}")
            status = 1
            continue
        if args.max_side and max(image.shape[:2]) > args.max_side:
            s = args.max_side / max(image.shape[:2])
            image = cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)),
                               interpolation=cv2.INTER_AREA)
        for k in range(args.count):
            # One independent, reproducible stream per (seed, input index, sample index).
            rng = np.random.default_rng([args.seed, i, k])
            src = random_crop(image, args.size, rng, flip=False) if args.size else image
            sample = degrade(src, rng, config)
            stem = f"{path.stem}_{k:03d}"
            if args.sheet:
                _write(args.out / f"{stem}.png", side_by_side(sample.degraded, sample.clean, sample.mask))
            else:
                _write(args.out / f"{stem}_degraded.png", sample.degraded)
                _write(args.out / f"{stem}_clean.png", sample.clean)
                _write(args.out / f"{stem}_mask.png", sample.mask)
            print(f"{stem}: {', '.join(sample.ops) or 'no-op'} (mask {100 * sample.mask.mean():.1f} %)")
    return status
