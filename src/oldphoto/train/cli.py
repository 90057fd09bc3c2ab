"""``oldphoto train STAGE --config FILE`` and ``oldphoto train export``.

Registered by :mod:`oldphoto.cli`; torch and the training code are imported only when a command runs.
Multi-GPU / multi-node: ``torchrun --nproc_per_node K -m oldphoto train STAGE --config FILE``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from oldphoto.train.schema import STAGE_NAMES


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
                       help="clean-photo source: a folder of photos, a corpus or packed crops folder "
                            "(its training split), corpus:train or skimage:train (repeatable; the first "
                            "that works is used)")
        p.add_argument("--vgg19", help="VGG19 ImageNet state dict (torchvision layout) for the perceptual "
                                       "loss; default: the ImageNet VGG16 of `oldphoto data perception`")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (dotted keys, JSON values), e.g. --set nets.G.width=32")
        p.add_argument("--threads", type=int, help="torch CPU threads")
        p.add_argument("--time-budget", type=float, metavar="SECONDS",
                       help="stop after this much training time (the LR decays over it); --steps stays a "
                            "maximum")
        p.add_argument("--precision", choices=("fp32", "bf16"),
                       help="bf16: forward passes under bfloat16 autocast (GPUs); default fp32")
        p.add_argument("--workers", type=int, metavar="N",
                       help="DataLoader worker processes that cut and degrade the crops (default 0: in the "
                            "training process, the reproducible stream)")
        p.set_defaults(func=_run_stage, stage=stage)
    k = sub.add_parser("pack", help="pack a GPU leg's training crops (train split only) into one folder",
                       description="Pack JPEG crops of a photo corpus' training photos and real old photos, "
                                   "with their licences, and/or aligned faces, with the first taps of the "
                                   "ImageNet VGG16, into a folder small enough to travel to a GPU machine "
                                   "(see docs/training.md, 'A GPU leg'). Held-out photos and "
                                   "evaluation-only sources are never packed. Read it as corpus:PACK:train, "
                                   "real_old:PACK:all and PACK/faces.")
    k.add_argument("--corpus", help="photo corpus from `oldphoto data build` (leave out for a face leg)")
    k.add_argument("--faces", help="face folder from `oldphoto data faces` (training faces only)")
    k.add_argument("--face-size", type=int, default=256, help="side of the packed faces (256)")
    k.add_argument("--face-quality", type=int, default=85, help="JPEG quality of the packed faces (85)")
    k.add_argument("--out", default="packs/gpu_leg", help="pack folder (default packs/gpu_leg)")
    k.add_argument("--budget-mib", type=float, default=None,
                   help="size of the whole pack in MiB (default: 12, or what the repository's tracked files "
                        "leave of one device call's 64 MiB, if less)")
    k.add_argument("--size", type=int, default=256, help="crop side (256)")
    k.add_argument("--quality", type=int, default=90, help="JPEG quality (90)")
    k.add_argument("--per-old", type=int, default=16, help="crops per real old photo (16)")
    k.add_argument("--vgg-layers", type=int, default=3,
                   help="VGG16 taps to pack for the perceptual loss (0: none; default 3 = up to relu3_1)")
    k.add_argument("--seed", type=int, default=0)
    k.set_defaults(func=_run_pack)
    g = sub.add_parser("leg", help="train every stage within one time budget (a GPU leg), export, evaluate",
                       description="One training leg (scripts/gpu_leg.sh; docs/training.md 'A GPU leg'): "
                                   "every stage warm-started from a weights folder and trained for its share "
                                   "of one wall-clock budget, then exported and evaluated; results in --out.")
    g.add_argument("--pack", required=True, help="pack folder from `oldphoto train pack`")
    g.add_argument("--out", required=True, help="results folder (summary.json, weights.tar.part*, logs)")
    g.add_argument("--budget", type=float, help="seconds for the whole leg (default 540; smoke 60)")
    g.add_argument("--reserve", type=float,
                   help="seconds of the budget kept for export and evaluation (default 75; smoke 30)")
    g.add_argument("--init-from", help="weights folder to warm-start from (default: the bundled weights)")
    g.add_argument("--config", default="gpu_leg", help="config file or preset (default gpu_leg)")
    g.add_argument("--stages", nargs="*",
                   help="only these stages, in this order (default: every stage the pack has data for)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value of every stage that has the key")
    g.add_argument("--device", default="auto", help="auto (CUDA, required unless --smoke), cpu or cuda")
    g.add_argument("--work", help="folder for the run directories (default: a new temporary folder)")
    g.add_argument("--smoke", action="store_true",
                   help="tiny batches and budgets on the CPU: checks the whole leg in about a minute")
    g.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    g.set_defaults(func=_run_leg)
    i = sub.add_parser("import-leg", help="copy a GPU leg's returned weights into a weights folder",
                       description="Rebuild the weights folder from a leg's weights.tar.part* (or take a "
                                   "weights folder), check that every role loads, and copy it into --dest "
                                   "(cards kept, metrics replaced by --metrics).")
    i.add_argument("source", help="folder holding weights.tar.part0… (the leg's $OUT), or a weights folder")
    i.add_argument("--dest", required=True, help="weights folder to write (e.g. runs/legs/1/weights)")
    i.add_argument("--metrics", help="`oldphoto train evaluate --out` JSON to put into every card")
    i.add_argument("--replace", action="store_true", help="overwrite roles that --dest already has")
    i.set_defaults(func=_run_import_leg)
    e = sub.add_parser("export", help="write trained runs as <role>.safetensors + card into a weights folder")
    e.add_argument("--runs", required=True,
                   help="folder holding the stage run directories (e.g. runs/small), or one run directory "
                        "(e.g. runs/face256)")
    e.add_argument("--dest", required=True,
                   help="weights folder to write (e.g. src/oldphoto/weights/bundled)")
    e.add_argument("--metrics", help="JSON file of measured metrics to put into the cards (the output of "
                                     "`oldphoto train evaluate --out`, or role -> metrics)")
    e.add_argument("--note", help="text prepended to every card's notes")
    e.add_argument("--stages", nargs="*", help="only these stages (default: every run with a checkpoint)")
    e.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the size; loaded back in float32)")
    e.add_argument("--replace", action="store_true",
                   help="overwrite roles that --dest already has (e.g. imported official weights)")
    e.set_defaults(func=_run_export)
    v = sub.add_parser("evaluate", help="held-out PSNR/SSIM vs degraded input and NLM+Telea, detector "
                                        "ROC-AUC, latent gap (the bundled weights' acceptance table)")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights",
                     help="weights folder to evaluate (also runs the `oldphoto restore` pipeline)")
    src.add_argument("--runs", help="runs folder to evaluate (networks only)")
    v.add_argument("--out", help="write the result JSON here")
    v.add_argument("--photos", type=int, metavar="N",
                   help="only the first N held-out photos (a quick look: the full split takes about 30 "
                        "minutes on a 2-core CPU; its rows are not the cards' figures)")
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
    if not args.resume and (out / "checkpoint.pt").is_file():
        # a fresh run here would overwrite that run's checkpoint (whatever its stage) from step 0
        print(f"oldphoto train {args.stage}: {out} already holds a run ({_run_summary(out)}): add --resume "
              "to continue it, or give another --out", file=sys.stderr)
        return 2
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.data:
        cfg["faces" if args.stage == "face" else "photos"] = args.data
    if args.vgg19:
        cfg["vgg19"] = args.vgg19
    if args.time_budget is not None:
        cfg["time_budget"] = args.time_budget
    if args.precision:
        cfg["precision"] = args.precision
    if args.workers is not None:
        cfg["data_workers"] = args.workers
    total = args.steps if args.steps is not None else cfg.get("steps")
    decay_start = cfg.get("decay_start")
    if not cfg.get("time_budget") and decay_start is not None and total is not None and decay_start >= total:
        # a preset's decay_start is set for its own length: --steps alone does not move it
        print(f"warning: decay_start {decay_start} ≥ steps {total}: the learning rate never decays in this "
              f"run (--set decay_start=N to decay it from step N, e.g. {total // 2})", file=sys.stderr)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from oldphoto.train import distributed
    from oldphoto.train.trainer import TrainingInterrupted, train

    try:
        # (only the step is kept: the trained networks, DDP-wrapped under torchrun, must be gone before the
        # process group ends; destroyed after it, at the interpreter's exit, they sometimes aborted the
        # process, "terminate called without an active exception", after its work was saved)
        step = train(args.stage, cfg, out, resume=args.resume, steps=args.steps, device=args.device)["step"]
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train {args.stage}: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        import signal

        what = ("interrupted" if exc.signum == signal.SIGINT
                else f"stopped by {signal.Signals(exc.signum).name}")
        try:  # (after SIGHUP stderr is /dev/null; a failing write must not hide the exit status)
            print(f"[{args.stage}] {what} at step {exc.step}; checkpoint {exc.checkpoint}: continue with "
                  "--resume", file=sys.stderr)
        except OSError:
            pass
        return 128 + int(exc.signum)
    except KeyboardInterrupt:
        print(f"oldphoto train {args.stage}: interrupted; --resume continues from the last checkpoint in "
              f"{out} (written every checkpoint_every steps), if there is one", file=sys.stderr)
        return 130
    finally:
        gc.collect()  # (the networks' reference cycles too)
        distributed.shutdown()  # (under torchrun: the process group ends with the command)
    print(f"[{args.stage}] done at step {step}; checkpoint {out / 'checkpoint.pt'}")
    return 0


def _run_summary(out: Path) -> str:
    """"stage S, step N" of the run in ``out`` (its checkpoint.pt), as far as it can be read."""
    from oldphoto.train.checkpoints import load_checkpoint

    try:
        state = load_checkpoint(out / "checkpoint.pt")
        return f"stage {state.get('stage')}, step {state.get('step')}"
    except RuntimeError:
        return "an unreadable checkpoint.pt"


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
        result = main_evaluate(args.runs, args.weights, args.out, gaps or None, args.photos)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train evaluate: {exc}", file=sys.stderr)
        return 1
    print(markdown_table(result))
    if args.photos:
        print(f"(the first {args.photos} held-out photo(s) only: not the whole split's figures)")
    extra = {k: v for k, v in result.items() if k not in ("unstructured", "mixed")}
    print(json.dumps(extra, indent=2))
    return 0


def _card_metrics(path: str | None) -> dict | None:
    """The measured metrics a card is given (``--metrics``), refused when they cannot stand for the
    weights: not a JSON object, or a quick table of a few held-out photos (``evaluate --photos``)."""
    import json

    if not path:
        return None
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(metrics, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if "heldout_photos" in metrics:
        raise ValueError(f"{path} measures only the first {metrics['heldout_photos']} held-out photos "
                         "(`train evaluate --photos`): a card's metrics come from the whole split")
    return metrics


def _run_export(args: argparse.Namespace) -> int:
    import tempfile

    from oldphoto.train.export import export_runs
    from oldphoto.train.leg import import_leg
    from oldphoto.weights.store import WeightsError

    try:
        metrics = _card_metrics(args.metrics)
    except ValueError as exc:
        print(f"oldphoto train export: {exc}", file=sys.stderr)
        return 2
    if metrics and ("unstructured" in metrics or "mixed" in metrics):  # a `train evaluate --out` file
        metrics = {"*": metrics}
    dest = Path(args.dest)
    try:
        # written aside first: the roles a run holds are known only once it is read, and a folder's
        # networks (official weights imported there) are replaced only when asked
        with tempfile.TemporaryDirectory() as tmp:
            staged = export_runs(Path(args.runs), Path(tmp), stages=args.stages, metrics=metrics,
                                 notes={"*": args.note} if args.note else None, half=args.half)
            import_leg(tmp, dest, replace=args.replace)  # (a weights folder into another, as a leg's)
            written = {role: dest / f"{role}.safetensors" for role in staged}
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError, WeightsError) as exc:
        print(f"oldphoto train export: {exc}", file=sys.stderr)
        return 1
    for role, path in written.items():
        print(f"{role}: {path}")
    from oldphoto.nets.descriptors import FACE_ROLES
    from oldphoto.weights.store import ROLES

    for role in written:
        if role not in ROLES:  # e.g. a face generator trained at 128: written, but restore never loads it
            faces = ", ".join(FACE_ROLES.values())
            hint = (f" (it restores faces with {faces} only: train the face stage at one of those sizes, "
                    "--set nets.G.size=…)" if role.startswith("face_") else "")
            print(f"warning: {role} is not a network `oldphoto restore` uses{hint}; it still serves "
                  "init_from", file=sys.stderr)
    return 0


def _run_pack(args: argparse.Namespace) -> int:
    from oldphoto.train import pack

    tree = pack.tracked_bytes(Path.cwd())  # (read once: it sizes the pack and checks the sum)
    budget_mib = args.budget_mib
    if budget_mib is None:
        budget_mib = pack.default_budget_mib(tree)
        print(f"pack budget {budget_mib:.2f} MiB (at most 12: what the tracked files leave of a device call)")
    if budget_mib <= 0:
        print("oldphoto train pack: the tracked files leave no room for a pack in one device call",
              file=sys.stderr)
        return 1
    try:
        manifest = pack.build_pack(args.corpus, args.out, budget_mib=budget_mib, size=args.size,
                                   quality=args.quality, per_old=args.per_old, vgg_layers=args.vgg_layers,
                                   seed=args.seed, faces=args.faces, face_size=args.face_size,
                                   face_quality=args.face_quality)
    except pack.PackError as exc:
        print(f"oldphoto train pack: {exc}", file=sys.stderr)
        return 1
    mib = manifest["bytes"] / 2**20
    print(f"{args.out}: {mib:.1f} MiB ({', '.join(f'{n} {k}' for k, n in manifest['counts'].items())}; "
          f"{len(manifest['sources'])} photos)")
    if tree is not None:
        total = tree / 2**20 + mib
        fits = pack.fits_travel(tree, mib)
        print(f"tracked files {tree / 2**20:.1f} MiB + pack = {total:.1f} MiB: "
              f"{'fits' if fits else 'is TOO LARGE for'} one device call ({pack.TRAVEL_LIMIT_MIB:.0f} MiB)")
        if not fits:  # (the pack stays: a smaller --budget-mib, or the default, replaces it)
            print(f"oldphoto train pack: {args.out} cannot travel with the tree in one device call; rebuild "
                  "it with a smaller --budget-mib (or leave the default, which fits)", file=sys.stderr)
            return 1
    return 0


def _run_leg(args: argparse.Namespace) -> int:
    from oldphoto.train.leg import run_leg

    budget = args.budget if args.budget is not None else (60.0 if args.smoke else 540.0)
    reserve = args.reserve if args.reserve is not None else (30.0 if args.smoke else 75.0)
    if args.smoke:
        import torch

        torch.set_num_threads(1)
    try:
        summary = run_leg(args.pack, args.out, budget_s=budget, reserve_s=reserve, init_from=args.init_from,
                          config=args.config, stages=tuple(args.stages) if args.stages else None,
                          overrides=args.set,
                          device=args.device, smoke=args.smoke, evaluate=not args.no_eval, work=args.work)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"oldphoto train leg: {exc}", file=sys.stderr)
        return 1
    failed = [s for s, e in summary["stages"].items() if "error" in e]
    return 1 if failed or not summary.get("weights_parts") else 0


def _run_import_leg(args: argparse.Namespace) -> int:

    from oldphoto.train.leg import import_leg
    from oldphoto.weights.store import WeightsError

    try:
        metrics = _card_metrics(args.metrics)
        roles = import_leg(args.source, args.dest, metrics=metrics, replace=args.replace)
    except (OSError, ValueError, WeightsError) as exc:
        print(f"oldphoto train import-leg: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dest}: {', '.join(roles)}")
    return 0
