"""``oldphoto weights``: import the official checkpoints and list installed weights."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights", help="import official checkpoints / list installed weights",
        description="Manage the network weights oldphoto uses (see docs/weights.md).")
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION")

    imp = sub.add_parser(
        "import", help="import official checkpoints (zips, extracted folders or .pth/.pt files)",
        description="Convert the official 'Bringing Old Photos Back to Life' checkpoints "
                    "(global_checkpoints.zip, face_checkpoints.zip, their extracted folders, or single "
                    ".pth/.pt files) into oldphoto's weights folder.")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--dest", metavar="DIR", help="weights folder (default: $OLDPHOTO_WEIGHTS or "
                                                   "~/.local/share/oldphoto/weights)")
    imp.add_argument("--role", help="role of a single checkpoint whose role its keys do not tell "
                                    "(vae_a, vae_b_quality, vae_b_scratch, face_256, face_512, ...)")
    imp.set_defaults(func=_cmd_import)

    lst = sub.add_parser("list", help="list installed weights")
    lst.add_argument("--dest", metavar="DIR", help="weights folder to list (default: the user folder)")
    lst.set_defaults(func=_cmd_list)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _cmd_import(args: argparse.Namespace) -> int:
    from oldphoto.weights.importer import import_checkpoints
    from oldphoto.weights.store import WeightsError, default_weights_dir

    dest = args.dest if args.dest else default_weights_dir()
    try:
        result = import_checkpoints(args.paths, dest=dest, role=args.role,
                                    log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except WeightsError as exc:
        print(f"oldphoto weights import: error: {exc}", file=sys.stderr)
        print(f"nothing was changed in {dest}", file=sys.stderr)
        return 1
    for note in result.skipped:
        print(f"skipped {note}", file=sys.stderr)
    for card in result.imported:
        print(f"imported {card.role}: {card.architecture}, {card.parameters:,} params, from {card.source} "
              f"(sha256 {card.sha256[:12]}) -> {card.path}")
    print(f"{len(result.imported)} network(s) imported into {dest}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from oldphoto.weights.store import ROLES, bundled_weights_dir, default_weights_dir, describe, scan

    folders = [args.dest] if args.dest else [default_weights_dir()]
    folders.append(bundled_weights_dir())
    seen: set[str] = set()
    status = 0
    for folder in folders:
        cards, problems = scan(folder)
        print(f"{folder}:")
        if not cards and not problems:
            print("  (no weights)")
        for line in describe(cards):
            print(f"  {line}")
        for problem in problems:
            print(f"  BROKEN {problem}")
            status = 1
        seen.update(c.role for c in cards)
    missing = [r for r in ROLES if r not in seen]
    if missing:
        print(f"not installed: {', '.join(missing)} (run `oldphoto weights import global_checkpoints.zip "
              f"face_checkpoints.zip`)")
    return status
