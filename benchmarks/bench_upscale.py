"""What ``--upscale`` costs: the upscaler's memory per input pixel, its seconds per megapixel, channels-last
against the default memory format, and how close tiles come to one whole-window call.

* ``--memory``: peak resident memory of one fp32 forward pass at two tile sides (``--side`` and half of
  it), each in a fresh process: the slope (bytes per input pixel) and what is left at zero size (the ×4
  part's strips), from which ``UPSCALER_BYTES_PER_PIXEL`` in :mod:`oldphoto.nets.descriptors` is set.
* speed (always): seconds of one forward pass of a ``--side``² tile, contiguous and channels-last, best of
  ``--repeat``, and the resulting seconds per input megapixel.
* ``--quality CORPUS`` (needs the installed ``upscale_x4`` weights and ``oldphoto data perception``):
  held-out photos of a corpus (``oldphoto data build``), a centre crop of each shrunk 2 and 4 times (area)
  and enlarged back to the crop's size by ``oldphoto restore --upscale`` (the pipeline as users run it,
  faces off; and with ``--no-denoise``), by its upscale stage alone (no restoration first) and by
  bicubic and Lanczos interpolation: PSNR, SSIM and LPIPS-alex against the crop.
  ``--repeat 0`` skips the speed rows.
* ``--seams PHOTO`` (needs the installed ``upscale_x4`` weights): a ``--side``² crop of the photo enlarged
  ×4 by :class:`oldphoto.stages.upscale.UpscaleStage` with small tiles, against the same crop in one call;
  max and mean absolute difference in levels of 255.

The architecture alone serves the memory and speed rows (the arithmetic does not depend on the weight
values); the seam row needs the real weights.

    python benchmarks/bench_upscale.py --memory --side 256 --seams examples/real_old/<photo>.png
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

from oldphoto.nets.upscaler import RRDBNet

_PEAK = """
import resource, torch
from oldphoto.nets.upscaler import RRDBNet
torch.set_grad_enabled(False)
net = RRDBNet().eval()
x = torch.rand(1, 3, {side}, {side}) * 2 - 1
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
net(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_growth(side: int) -> int:
    """Bytes the peak resident memory grows by during one forward pass of a ``side``² tile (Linux: KiB)."""
    out = subprocess.run([sys.executable, "-c", _PEAK.format(side=side)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1]) * 1024


def seconds(net: torch.nn.Module, side: int, channels_last: bool, repeat: int) -> float:
    x = torch.rand(1, 3, side, side) * 2 - 1
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        net = net.to(memory_format=torch.contiguous_format)
    best = float("inf")
    with torch.inference_mode():
        net(x[..., :64, :64])  # warm-up
        for _ in range(repeat):
            t = time.perf_counter()
            net(x)
            best = min(best, time.perf_counter() - t)
    return best


def seam_difference(photo: str, side: int, weights: str | None) -> dict:
    from oldphoto.io.photo import read_photo
    from oldphoto.stages.upscale import CONTEXT, UpscaleStage
    from oldphoto.weights.store import load_model

    net = load_model("upscale_x4", weights)
    crop = read_photo(photo).pixels[:side, :side].astype(np.float32)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net(x)

    whole = UpscaleStage(run, 4, tile=max(crop.shape[:2]) + 2 * CONTEXT)(crop)
    tiled = UpscaleStage(run, 4, tile=64 + 2 * CONTEXT)(crop)
    diff = np.abs(whole - tiled) * 255
    return {"photo": photo, "crop": list(crop.shape[:2]), "core": 64, "context": CONTEXT,
            "max_levels": round(float(diff.max()), 2), "mean_levels": round(float(diff.mean()), 3)}


def quality(corpus: str, n: int, crop: int, weights: str | None) -> dict:
    from oldphoto.metrics.fullref import psnr, ssim
    from oldphoto.metrics.lpips import LPIPS, pair_distance
    from oldphoto.pipeline import Restorer
    from oldphoto.synth.corpus import Corpus

    photos = Corpus(corpus).clean("heldout")
    lpips = LPIPS.standard("alex").eval()
    restorers = {f: Restorer(upscale=f, faces=False, weights=weights) for f in (2, 4)}
    plain = {f: r.with_options(denoise=False) for f, r in restorers.items()}
    table: dict[str, dict[str, list[float]]] = {}
    for i in range(min(n, len(photos))):
        image = photos[i]
        h, w = image.shape[:2]
        if min(h, w) < crop:
            continue
        y, x = (h - crop) // 2, (w - crop) // 2
        target = np.ascontiguousarray(image[y:y + crop, x:x + crop])
        for f, restorer in restorers.items():
            small = cv2.resize(target, (crop // f, crop // f), interpolation=cv2.INTER_AREA)
            versions = {"bicubic": cv2.resize(small, (crop, crop), interpolation=cv2.INTER_CUBIC),
                        "lanczos": cv2.resize(small, (crop, crop), interpolation=cv2.INTER_LANCZOS4),
                        "oldphoto restore --upscale": restorer.restore(small).image,
                        "... --no-denoise": plain[f].restore(small).image,
                        "the upscaler alone": restorer.upscale_stage()(small)}
            for name, out in versions.items():
                out = np.clip(out, 0.0, 1.0).astype(np.float32)
                scores = table.setdefault(f"x{f} {name}", {"psnr": [], "ssim": [], "lpips": []})
                scores["psnr"].append(psnr(out, target))
                scores["ssim"].append(ssim(out, target))
                with torch.inference_mode():
                    scores["lpips"].append(pair_distance(lpips, out, target))
    return {"corpus": corpus, "crop": crop, "photos": len(next(iter(table.values()))["psnr"]) if table else 0,
            "mean": {k: {m: round(float(np.mean(v)), 4) for m, v in scores.items()}
                     for k, scores in table.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=256, help="tile side of the speed rows (and seam crop)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="measure the memory slope (two processes)")
    parser.add_argument("--seams", metavar="PHOTO", help="tiles against one call on a crop of PHOTO")
    parser.add_argument("--quality", metavar="CORPUS", help="enlargement against interpolation on the "
                                                            "held-out photos of CORPUS")
    parser.add_argument("--n", type=int, default=20, help="held-out photos for --quality")
    parser.add_argument("--crop", type=int, default=256, help="crop side for --quality")
    parser.add_argument("--weights", help="weights folder holding upscale_x4 (default: the user's)")
    args = parser.parse_args()

    row: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                 "threads": torch.get_num_threads(), "torch": torch.__version__, "side": args.side}
    if args.memory:
        small, large = args.side // 2, args.side
        grow = {s: peak_growth(s) for s in (small, large)}
        slope = (grow[large] - grow[small]) / (large * large - small * small)
        fixed = grow[large] - slope * large * large  # the ×4 part's strips (oldphoto.nets.upscaler)
        row["memory"] = {"peak_growth_bytes": grow, "bytes_per_input_pixel": round(slope),
                         "fixed_bytes": round(fixed)}
        mib = {s: grow[s] / 2**20 for s in grow}
        print(f"memory: peak grows {mib[small]:.0f} MiB at {small}², {mib[large]:.0f} MiB at {large}²: "
              f"{slope / 1000:.1f} KB per input pixel + {fixed / 2**20:.0f} MiB")
    net = RRDBNet().eval()
    for layout in (False, True) if args.repeat > 0 else ():
        s = seconds(net, args.side, layout, args.repeat)
        name = "channels_last" if layout else "contiguous"
        row[name] = {"seconds": round(s, 3), "seconds_per_mpx": round(s / (args.side ** 2 / 1e6), 1)}
        print(f"{name:>13}: {s:.2f} s per {args.side}² tile, {s / (args.side ** 2 / 1e6):.0f} s per input MP")
    if args.seams:
        row["seams"] = seam_difference(args.seams, args.side, args.weights)
        print(f"seams: tiles of 64 px (+{row['seams']['context']} context) vs one call: max "
              f"{row['seams']['max_levels']} levels, mean {row['seams']['mean_levels']}")
    if args.quality:
        row["quality"] = quality(args.quality, args.n, args.crop, args.weights)
        for name, m in row["quality"]["mean"].items():
            print(f"{name:>32}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, LPIPS {m['lpips']:.4f}")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
