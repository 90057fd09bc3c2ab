"""``oldphoto train pack``: a GPU leg's training data in one folder small enough to travel with the tree.

A lent GPU machine gets a copy of the working tree (size-limited, the tracked files included) and
nothing else: no corpus, no user weights folder.  The pack holds what the training stages read:

* ``clean_train.npz``: 256² JPEG crops of the corpus' *training* photos (``oldphoto data patches``
  format).  No crop of a held-out photo (the evaluation's ``corpus:heldout``) and nothing of the sources
  reserved for evaluation (opencv-doc's samples) is packed;
* ``real_old_train.npz`` / ``real_old_heldout.npz``: crops of the real old photos, which VAE_A trains on
  (the configs' ``real_old:all``);
* ``manifest.json``: counts, sizes and every packed photo's source, origin and licence;
* ``perception/vgg16_imagenet.safetensors``: the first ``vgg_layers`` taps of the ImageNet VGG16 of
  ``oldphoto data perception`` in float16 (relu1_1 … relu3_1: 1 MB instead of 59 MB), so that a leg
  can turn the perceptual loss on (``lambda_vgg`` > 0 with ``vgg_layers`` ≤ the packed taps).  Point
  ``$OLDPHOTO_WEIGHTS`` at the pack to use it.

Read it as sources ``corpus:PACK:train`` (clean photos) and ``real_old:PACK:all``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: what the device tool sends at most: the working tree and the carried paths together
TRAVEL_LIMIT_MIB = 64.0


class PackError(RuntimeError):
    pass


def pack_sources(pack: str | Path) -> dict[str, list[str]]:
    """Config values that read a pack: ``photos`` and ``real_old``."""
    return {"photos": [f"corpus:{pack}:train"], "real_old": [f"real_old:{pack}:all"]}


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


def build_pack(corpus_root: str | Path, out: str | Path, budget_mib: float = 12.0, size: int = 256,
               quality: int = 90, per_old: int = 16, vgg_layers: int = 3, seed: int = 0,
               log=print) -> dict[str, Any]:
    """Write the pack into ``out`` (replaced as a whole, never left half-written); returns its manifest."""
    from safetensors.torch import save_file

    from oldphoto.synth.corpus import CORPUS_FORMAT, Corpus, CorpusError, write_json
    from oldphoto.synth.sources import build_patches

    out = Path(out)
    if out.exists() and not (out / "manifest.json").is_file():
        raise PackError(f"{out} exists and is not a pack: refusing to replace it")
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
        patch_budget = budget_mib - vgg_bytes / 2**20
        if patch_budget <= 0:
            raise PackError(f"--budget-mib {budget_mib} leaves nothing for the crops")
        counts = build_patches(corpus, tmp, size=size, budget_mib=patch_budget, quality=quality,
                               per_heldout=0, per_old=per_old, seed=seed, log=log)
        manifest = json.loads((tmp / "manifest.json").read_text(encoding="utf-8"))
        if vgg:
            (tmp / "perception").mkdir()
            save_file(vgg, str(tmp / "perception" / "vgg16_imagenet.safetensors"),
                      metadata={"source": "ImageNet VGG16 of `oldphoto data perception`, float16",
                                "taps": str(vgg_layers)})
        manifest["purpose"] = ("training data of a GPU leg (`scripts/gpu_leg.sh`): no held-out photo, no "
                               "evaluation-only source")
        manifest["corpus"] = str(Path(corpus_root).resolve())
        manifest["vgg_layers"] = vgg_layers
        manifest["bytes"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        write_json(tmp / "manifest.json", manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"packed {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}")
    return manifest


def tracked_bytes(repo: Path) -> int | None:
    """Bytes of the files git tracks in ``repo`` (what travels besides the carried paths), or None."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True,
                               timeout=60).stdout.split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0
    for name in names:
        path = repo / name.decode("utf-8", "replace")
        if name and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total
