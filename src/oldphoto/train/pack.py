"""``oldphoto train pack``: a GPU leg's training data in one folder small enough to travel with the tree.

A lent GPU machine gets a copy of the working tree (size-limited, the tracked files included) and
nothing else: no corpus, no user weights folder.  The pack holds what the training stages read:

* ``clean_train.npz``: 256² JPEG crops of the corpus' *training* photos (``oldphoto data patches``
  format).  No crop of a held-out photo (the evaluation's ``corpus:heldout``) and nothing of the sources
  reserved for evaluation (opencv-doc's samples) is packed;
* ``real_old_train.npz`` / ``real_old_heldout.npz``: crops of the real old photos, which VAE_A trains on
  (the configs' ``real_old:all``);
* ``faces/``: aligned faces for the ``face`` stage (``--faces``, from ``oldphoto data faces``), shrunk to
  the training size and re-encoded, with their own ``manifest.json`` (generator, seed, licence: the card
  of a face model trained on them carries it); a pack may hold faces only (``--corpus`` left out), for a
  face leg;
* ``manifest.json``: counts, sizes and every packed photo's source, origin and licence;
* ``perception/vgg16_imagenet.safetensors``: the first ``vgg_layers`` taps of the ImageNet VGG16 of
  ``oldphoto data perception`` in float16 (relu1_1 … relu3_1: 1 MB instead of 59 MB), so that a leg
  can turn the perceptual loss on (``lambda_vgg`` > 0 with ``vgg_layers`` ≤ the packed taps).  Point
  ``$OLDPHOTO_WEIGHTS`` at the pack to use it.

Read it as sources ``corpus:PACK:train`` (clean photos), ``real_old:PACK:all`` and ``PACK/faces``
(:func:`pack_sources`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: what the device tool sends at most: the working tree and the carried paths together
TRAVEL_LIMIT_MIB = 64.0
#: the share of it a pack and the tracked files may fill (the rest: files the tree gains meanwhile)
TRAVEL_FILL = 0.97
#: the pack's size when nothing says how much room the tree leaves (MiB)
DEFAULT_BUDGET_MIB = 12.0
#: room left for the pack's manifest beside its crops (MiB)
MANIFEST_MIB = 0.15
FACES = "faces"  # the pack's face folder


class PackError(RuntimeError):
    pass


def pack_sources(pack: str | Path) -> dict[str, list[str]]:
    """Config values that read what the pack holds: ``photos`` and ``real_old`` (photo crops), ``faces``."""
    pack = Path(pack)
    sources: dict[str, list[str]] = {}
    if (pack / "clean_train.npz").is_file():
        sources.update(photos=[f"corpus:{pack}:train"], real_old=[f"real_old:{pack}:all"])
    if (pack / FACES / "manifest.json").is_file():
        sources["faces"] = [str(pack / FACES)]
    return sources


def pack_faces(source: str | Path, out: Path, budget_mib: float, size: int = 256, quality: int = 85,
               log=print) -> int:
    """Faces of an ``oldphoto data faces`` folder into ``out`` (``faces/*.jpg`` + ``manifest.json``),
    shrunk to ``size``² and re-encoded, in the source's order until ``budget_mib`` is used; returns how
    many.  The manifest keeps the source's description and licence; landmarks are scaled."""
    import io

    from PIL import Image

    from oldphoto.synth.corpus import write_json
    from oldphoto.synth.faces import refuse_heldout

    source = Path(source)
    try:
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"{source}: not a face folder of `oldphoto data faces` ({exc})") from exc
    try:
        refuse_heldout(manifest, source)
    except ValueError as exc:
        raise PackError(str(exc)) from None
    entries = manifest.get("faces") or []
    if not entries:
        raise PackError(f"{source}: the manifest lists no faces")
    budget = int(budget_mib * 2**20)
    (out / "faces").mkdir(parents=True)
    # the manifest travels too (a thousand faces' landmarks are a quarter of a MiB): its header (and the
    # fields added below) and each face's entry count against the budget with the JPEGs
    header = {k: v for k, v in manifest.items() if k != "faces"}
    kept, used = [], len(json.dumps(header, indent=1)) + 512
    for entry in entries:
        with Image.open(source / entry["file"]) as im:
            scale = size / im.width
            face = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        face.save(buf, format="JPEG", quality=quality)
        name = f"faces/{len(kept):06d}.jpg"
        points = [[round(x * scale, 2), round(y * scale, 2)] for x, y in entry.get("points", [])]
        packed = {**entry, "file": name, "points": points, "source_file": entry["file"]}
        cost = buf.tell() + len(json.dumps(packed, indent=3)) + 2  # (indent 3: at least its nesting's)
        if used + cost > budget:
            break
        (out / name).write_bytes(buf.getvalue())
        used += cost
        kept.append(packed)
    if not kept:
        raise PackError(f"--faces: not one face fits {budget_mib:.1f} MiB")
    write_json(out / "manifest.json", {**manifest, "size": size, "faces": kept,
                                       "packed": f"{len(kept)} of {len(entries)} faces of {source}, "
                                                 f"{size}² JPEG quality {quality}"})
    log(f"packed {len(kept)} of {len(entries)} faces ({used / 2**20:.1f} MiB)")
    return len(kept)


def _vgg_subset(vgg_layers: int) -> dict[str, Any]:
    """The torchvision-layout tensors of the first ``vgg_layers`` taps of the installed ImageNet VGG16."""
    import torch

    from oldphoto.metrics.features import FeatureWeightsError, load_state_dict_file
    from oldphoto.metrics.perception import PerceptionWeightsError, perception_file
    from oldphoto.train.perceptual import VGG16_BLOCKS, torchvision_conv_indices

    if not 1 <= vgg_layers <= 5:
        raise PackError(f"--vgg-layers must be 0..5, got {vgg_layers}")
    try:
        sd = load_state_dict_file(perception_file("vgg16_imagenet"))
    except (PerceptionWeightsError, FeatureWeightsError) as exc:
        raise PackError(f"no ImageNet VGG16 to pack ({exc}); or pass --vgg-layers 0") from exc
    n_convs = sum(VGG16_BLOCKS[:vgg_layers - 1]) + 1  # the convs up to the last tap
    out = {}
    for idx in torchvision_conv_indices(VGG16_BLOCKS)[:n_convs]:
        for name in ("weight", "bias"):
            key = f"features.{idx}.{name}"
            if key not in sd:
                raise PackError(f"the installed VGG16 lacks {key}")
            out[key] = sd[key].to(torch.float16).contiguous()
    return out


def build_pack(corpus_root: str | Path | None, out: str | Path, budget_mib: float = 12.0, size: int = 256,
               quality: int = 90, per_old: int = 16, vgg_layers: int = 3, seed: int = 0,
               faces: str | Path | None = None, face_size: int = 256, face_quality: int = 85,
               log=print) -> dict[str, Any]:
    """Write the pack into ``out`` (replaced as a whole, never left half-written); returns its manifest.

    ``corpus_root`` (photo crops) and ``faces`` (a face folder) may each be None, not both; with both,
    they share the budget left after the VGG16 taps evenly."""
    from safetensors.torch import save_file

    from oldphoto.synth.corpus import CORPUS_FORMAT, Corpus, CorpusError, write_json
    from oldphoto.synth.sources import build_patches

    out = Path(out)
    if out.exists() and not (out / "manifest.json").is_file():
        raise PackError(f"{out} exists and is not a pack: refusing to replace it")
    if corpus_root is None and faces is None:
        raise PackError("nothing to pack: give a corpus, faces, or both")
    corpus = None
    if corpus_root is not None:
        try:
            corpus = Corpus(corpus_root)
        except CorpusError as exc:
            raise PackError(str(exc)) from exc
        if corpus.format != CORPUS_FORMAT:
            raise PackError(f"{corpus_root}: needs a photo corpus from `oldphoto data build`")
    vgg_bytes = 0
    vgg = _vgg_subset(vgg_layers) if vgg_layers > 0 else {}
    if vgg:
        vgg_bytes = sum(t.numel() * t.element_size() for t in vgg.values())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        data_budget = budget_mib - vgg_bytes / 2**20
        if data_budget <= 0:
            raise PackError(f"--budget-mib {budget_mib} leaves nothing for the crops or faces")
        if corpus is not None and faces is not None:
            data_budget /= 2
        manifest: dict[str, Any] = {"counts": {}, "sources": []}
        if corpus is not None:
            build_patches(corpus, tmp, size=size, budget_mib=data_budget, quality=quality, per_heldout=0,
                          per_old=per_old, seed=seed, log=log)
            manifest = json.loads((tmp / "manifest.json").read_text(encoding="utf-8"))
        else:
            tmp.mkdir(parents=True)
        if faces is not None:
            n = pack_faces(faces, tmp / FACES, data_budget, size=face_size, quality=face_quality, log=log)
            manifest["counts"]["faces"] = n
            manifest["faces"] = {"source": str(Path(faces).resolve()), "size": face_size}
        if vgg:
            (tmp / "perception").mkdir()
            save_file(vgg, str(tmp / "perception" / "vgg16_imagenet.safetensors"),
                      metadata={"source": "ImageNet VGG16 of `oldphoto data perception`, float16",
                                "taps": str(vgg_layers)})
        manifest["purpose"] = ("training data of a GPU leg (`scripts/gpu_leg.sh`): no held-out photo, no "
                               "evaluation-only source")
        manifest["corpus"] = None if corpus_root is None else str(Path(corpus_root).resolve())
        manifest["vgg_layers"] = vgg_layers
        manifest["bytes"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        write_json(tmp / "manifest.json", manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"packed {', '.join(f'{n} {k}' for k, n in sorted(manifest['counts'].items()))}")
    return manifest


def fits_travel(tree_bytes: int, pack_mib: float) -> bool:
    """Whether the tracked files and a pack of ``pack_mib`` travel together in one device call."""
    return tree_bytes / 2**20 + pack_mib <= TRAVEL_LIMIT_MIB * TRAVEL_FILL


def default_budget_mib(tree_bytes: int | None) -> float:
    """The pack's size when none is asked for: :data:`DEFAULT_BUDGET_MIB`, or less where the tracked
    files (``tree_bytes``, from :func:`tracked_bytes`; None: unknown) leave less room in one device call
    (they grow with every session's commits: at 50.3 MiB a 12 MiB pack no longer fit)."""
    if tree_bytes is None:
        return DEFAULT_BUDGET_MIB
    room = TRAVEL_LIMIT_MIB * TRAVEL_FILL - tree_bytes / 2**20
    # (less the manifest written beside the crops, which names each photo with its origin and licence:
    # 0.075 MiB for 190 photos; a 0.05 allowance let a pack built to fit overflow the call)
    return round(min(DEFAULT_BUDGET_MIB, room - MANIFEST_MIB), 2)


def tracked_bytes(repo: Path) -> int | None:
    """Bytes of what travels of ``repo`` besides the carried paths, or None: the files git tracks and the
    untracked ones it does not ignore (the device tool copies those too: a stray output left in the tree
    counts against the pack's room)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=repo, capture_output=True, check=True, timeout=60).stdout.split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0
    for name in names:
        path = repo / name.decode("utf-8", "replace")
        if name and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total
