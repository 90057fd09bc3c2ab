"""``oldphoto train STAGE --config FILE`` and ``oldphoto train export``.

Registered by :mod:`oldphoto.cli`; torch and the training code are imported only when a command runs.
Multi-GPU / multi-node: ``torchrun --nproc_per_node K -m oldphoto train STAGE --config FILE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

STAGE_NAMES = ("vae_a", "vae_b", "mapping_quality", "mapping_scratch", "mapping_hr", "detector", "face")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a restoration stage or export trained weights",
        description="Train one stage of the restoration pipeline (paper losses and schedule), or export "
                    "trained runs as a weights folder. "
                    "Multi-GPU: torchrun --nproc_per_node K -m oldphoto train ...")
    sub = parser.add_subparsers(dest="train_command", metavar="STAGE")
    for stage in STAGE_NAMES:
        p = sub.add_parser(stage, help=f"train {stage}")
        p.add_argument("--config", required=True,
                       help="config file (JSON) or preset name: tiny, small (= bundled weights), official")
        p.add_argument("--out", help="run directory (default runs/<config>/<stage>)")
        p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt if present")
        p.add_argument("--steps", type=int, help="total number of steps (overrides the config)")
        p.add_argument("--seed", type=int, help="random seed (overrides the config)")
        p.add_argument("--device", default="auto",
                       help="auto (CUDA, then Apple MPS, then the CPU) | cpu | cuda | cuda:N | mps; a device "
                            "that is not there is an error")
        p.add_argument("--data", action="append",
                       help="clean-photo source: a folder, corpus:train or skimage:train "
                            "(repeatable; the first that works is used)")
        p.add_argument("--vgg19", help="VGG19 ImageNet state dict (torchvision layout) for the perceptual "
                                       "loss; default: the ImageNet VGG16 of `oldphoto data perception`")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (dotted keys, JSON values), e.g. --set nets.G.width=32")
        p.add_argument("--threads", type=int, help="torch CPU threads")
        p.set_defaults(func=_run_stage, stage=stage)
    e = sub.add_parser("export", help="write trained runs as <role>.safetensors + card into a weights folder")
    e.add_argument("--runs", required=True, help="folder holding the stage run directories (e.g. runs/small)")
    e.add_argument("--dest", required=True,
                   help="weights folder to write (e.g. src/oldphoto/weights/bundled)")
    e.add_argument("--metrics", help="JSON file of measured metrics to put into the cards (the output of "
                                     "`oldphoto train evaluate --out`, or role -> metrics)")
    e.add_argument("--note", help="text prepended to every card's notes")
    e.add_argument("--stages", nargs="*", help="only these stages (default: every run with a checkpoint)")
    e.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the size; loaded back in float32)")
    e.set_defaults(func=_run_export)
    v = sub.add_parser("evaluate", help="held-out PSNR/SSIM vs degraded input and NLM+Telea, detector "
                                        "ROC-AUC, latent gap (the bundled weights' acceptance table)")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights",
                     help="weights folder to evaluate (also runs the `oldphoto restore` pipeline)")
    src.add_argument("--runs", help="runs folder to evaluate (networks only)")
    v.add_argument("--out", help="write the result JSON here")
    v.add_argument("--latent-gap", nargs="*", default=[], metavar="NAME=RUN",
                   help="VAE_A runs to compare by real-old vs synthetic latent distance, e.g. "
                        "with_latent_D=runs/small/vae_a without=runs/small/vae_a_nold")
    v.set_defaults(func=_run_evaluate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _run_stage(args: argparse.Namespace) -> int:
    from oldphoto.train.config import ConfigError, config_path, load_stage_config

    try:
        name = config_path(args.config).stem
        out = Path(args.out) if args.out else Path("runs") / name / args.stage
        cfg = load_stage_config(args.config, args.stage, args.set, runs_dir=out.parent)
    except ConfigError as exc:
        print(f"oldphoto train: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.data:
        cfg["faces" if args.stage == "face" else "photos"] = args.data
    if args.vgg19:
        cfg["vgg19"] = args.vgg19
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from oldphoto.train.trainer import train

    try:
        result = train(args.stage, cfg, out, resume=args.resume, steps=args.steps, device=args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train {args.stage}: {exc}", file=sys.stderr)
        return 1
    print(f"[{args.stage}] done at step {result['step']}; checkpoint {out / 'checkpoint.pt'}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    import torch

    from oldphoto.train.evaluate import main_evaluate, markdown_table

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    gaps = {}
    for item in args.latent_gap:
        name, sep, path = item.partition("=")
        if not sep:
            print(f"oldphoto train evaluate: --latent-gap {item!r}: expected NAME=RUN", file=sys.stderr)
            return 2
        gaps[name] = path
    try:
        result = main_evaluate(args.runs, args.weights, args.out, gaps or None)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train evaluate: {exc}", file=sys.stderr)
        return 1
    print(markdown_table(result))
    extra = {k: v for k, v in result.items() if k not in ("unstructured", "mixed")}
    print(json.dumps(extra, indent=2))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    import json

    from oldphoto.train.export import export_runs

    metrics = None
    if args.metrics:
        try:
            metrics = json.loads(Path(args.metrics).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"oldphoto train export: {args.metrics}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(metrics, dict):
            print(f"oldphoto train export: {args.metrics}: expected a JSON object", file=sys.stderr)
            return 2
        if "unstructured" in metrics or "mixed" in metrics:  # an `oldphoto train evaluate --out` file
            metrics = {"*": metrics}
    try:
        written = export_runs(Path(args.runs), Path(args.dest), stages=args.stages, metrics=metrics,
                              notes={"*": args.note} if args.note else None, half=args.half)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train export: {exc}", file=sys.stderr)
        return 1
    for role, path in written.items():
        print(f"{role}: {path}")
    return 0
