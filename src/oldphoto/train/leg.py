"""``oldphoto train leg``: one training leg of every stage within one wall-clock budget (a lent GPU).

A leg (``scripts/gpu_leg.sh`` on the device machine, docs/training.md "A GPU leg"):

1. trains ``vae_b``, ``vae_a``, ``detector``, then the mappings on the new VAEs, and the ``face`` stage,
   as far as the pack has their data (photo crops, faces; ``--stages`` chooses), each warm-started
   from a weights folder (``init_from``, default the bundled weights, whose cards give the widths; the
   face generator starts from scratch when that folder has no face model) and stopped by time:
   stage *i* gets ``leg_share_i / Σ(shares left)`` of the time left before the deadline
   minus ``reserve`` (export and evaluation), so one slow start-up does not push the leg past its limit;
2. exports the trained networks as a weights folder (``<role>.safetensors`` + card, device, precision,
   steps and seconds in the notes; the face generator in float16, as it would be bundled); roles not
   trained in this leg are copied from ``init_from`` so the folder is complete;
3. evaluates the new global networks and ``init_from`` on the same held-out crops (``corpus:heldout``
   where the corpus is present, else scikit-image's held-out photos: a sanity check, not the acceptance
   table);
4. writes into ``out``: ``summary.json``, ``weights.tar.partN`` (the weights folder as a tar cut into
   pieces under 15 MiB, since the device tool returns at most 16 MiB per file) and ``runs_logs.tar.gz``
   (configs, ``log.jsonl``, sample sheets; checkpoints stay behind: the exported weights are what the
   next leg warm-starts from).  A face model is evaluated here, after the import, where dlib is
   (``benchmarks/bench_faces.py``; the device machine has none).

``smoke=True`` runs the same path on the CPU with tiny batches and budgets (about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

GLOBAL_STAGES = ("vae_b", "vae_a", "detector", "mapping_quality", "mapping_scratch", "mapping_hr")
ORDER = (*GLOBAL_STAGES, "face")
PART_BYTES = 15 * 2**20  # the device tool returns files of at most 16 MiB
SMOKE_SETS = ("batch_size=2", "crop=64", "log_every=5", "data_workers=1", "checkpoint_every=1000000")
SMOKE_FACE_NETS = {"G": {"ngf": 8, "spade_hidden": 8, "size": 64}, "D": {"ndf": 8, "n_layers": 2, "num_D": 1}}


def pack_stages(pack: str | Path) -> tuple[str, ...]:
    """The stages a pack has data for, in leg order: the global ones (photo crops), ``face`` (faces)."""
    from oldphoto.train.pack import pack_sources

    sources = pack_sources(pack)
    return (*(GLOBAL_STAGES if "photos" in sources else ()), *(("face",) if "faces" in sources else ()))


def _share_budgets(shares: dict[str, float], left_s: float) -> float:
    return left_s / max(1e-9, sum(shares.values()))


def run_leg(pack: str | Path, out: str | Path, *, budget_s: float = 540.0, reserve_s: float = 75.0,
            init_from: str | Path | None = None, config: str = "gpu_leg",
            stages: tuple[str, ...] | None = None, overrides: list[str] | tuple[str, ...] = (),
            device: str = "auto", smoke: bool = False,
            evaluate: bool = True, work: str | Path | None = None, log=print) -> dict[str, Any]:
    import torch

    from oldphoto.train.config import load_stage_config
    from oldphoto.train.pack import pack_sources
    from oldphoto.train.trainer import train
    from oldphoto.weights.store import bundled_weights_dir

    t_start = time.time()
    deadline = t_start + budget_s
    pack, out = Path(pack), Path(out)
    init_from = Path(init_from) if init_from else bundled_weights_dir()
    manifest_path = pack / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{pack}: no pack (build one with `oldphoto train pack --corpus CORPUS "
                                f"--out {pack}`)")
    pack_manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not any(init_from.glob("*.safetensors")):
        raise FileNotFoundError(f"{init_from}: no weights to warm-start from")
    stages = tuple(stages) if stages else pack_stages(pack)
    unknown = [s for s in stages if s not in ORDER]
    if unknown:
        raise ValueError(f"unknown leg stages {unknown}; a leg trains {', '.join(ORDER)}")
    sources = pack_sources(pack)
    missing = [s for s in stages if ("faces" if s == "face" else "photos") not in sources]
    if missing or not stages:
        raise ValueError(f"{pack} has no data for {', '.join(missing) or 'any stage'} (pack photo crops "
                         f"with --corpus, faces with --faces)")
    if device == "auto" and not smoke and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: a leg is meant for a GPU (pass --device cpu or --smoke to run "
                           "it on the CPU anyway)")
    if smoke:
        device = "cpu" if device == "auto" else device
    if (pack / "perception" / "vgg16_imagenet.safetensors").is_file():
        os.environ["OLDPHOTO_WEIGHTS"] = str(pack)  # the packed VGG16 taps for the perceptual loss
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="oldphoto-leg-"))
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    sets = [*(SMOKE_SETS if smoke else ()), *overrides]

    summary: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)), "budget_s": budget_s,
        "smoke": smoke, "config": config, "overrides": sets, "init_from": str(init_from),
        "torch": torch.__version__, "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "pack": {"bytes": pack_manifest.get("bytes"), "counts": pack_manifest.get("counts")},
        "stages": {}}
    log(f"[leg] torch {torch.__version__}, device {device}, gpu {summary['gpu']}; pack {pack} "
        f"({pack_manifest.get('counts')}); warm start from {init_from}; budget {budget_s:.0f} s")

    # the leg's --set is given for every stage: each stage takes the keys it has
    cfgs = {s: load_stage_config(config, s, runs_dir=runs, shared_overrides=sets) for s in stages}
    shares = {s: float(cfgs[s]["leg_share"]) for s in stages}
    done: list[str] = []
    for stage in stages:
        cfg = cfgs[stage]
        left = deadline - time.time() - reserve_s
        stage_budget = max(2.0, shares[stage] * _share_budgets(shares, left))
        shares.pop(stage)
        # the resolved config holds every setting of its stage: only VAE_A has real old photos
        cfg.update({k: v for k, v in sources.items() if k in cfg})
        cfg["init_from"] = str(init_from)
        if stage == "face":
            if smoke:
                cfg["nets"] = {k: {**cfg["nets"].get(k, {}), **v} for k, v in SMOKE_FACE_NETS.items()}
            size = int(cfg["nets"].get("G", {}).get("size", 256))
            if not (init_from / f"face_{size}.safetensors").is_file():
                cfg["init_from"] = None  # no face model to start from: a new one
        cfg["time_budget"] = round(stage_budget, 1)
        # leave a core to the training process and one to the pinning thread
        cfg["data_workers"] = min(int(cfg["data_workers"]), max(1, (os.cpu_count() or 1) - 2))
        for key in ("vae_a", "vae_b"):  # a VAE this leg did not train: the mappings use the old one
            # (only where the config names a VAE run: every mapping config has the key, None when unset).
            # Not "has a checkpoint": a stage that failed after a checkpoint is not exported, so the
            # mappings must fit init_from's VAE, the one the leg returns.
            if cfg.get(key) is not None and key not in done:
                cfg[key] = str(init_from)
        log(f"[leg] {stage}: {stage_budget:.0f} s of training")
        t0 = time.time()
        entry: dict[str, Any] = {"budget_s": round(stage_budget, 1), "init_from": cfg["init_from"]}
        try:
            try:
                result = train(stage, cfg, runs / stage, device=device)
            except Exception as exc:  # noqa: BLE001
                if int(cfg["data_workers"]) <= 0:
                    raise
                # worker processes can fail where the stage itself works (e.g. a small /dev/shm):
                # spend the rest of this stage's time in one process rather than lose the stage
                log(f"[leg] {stage} failed with {cfg['data_workers']} data workers ({type(exc).__name__}: "
                    f"{exc}); again without workers")
                entry["workers_error"] = f"{type(exc).__name__}: {exc}"
                cfg["data_workers"] = 0
                cfg["time_budget"] = max(2.0, round(stage_budget - (time.time() - t0), 1))
                shutil.rmtree(runs / stage, ignore_errors=True)
                result = train(stage, cfg, runs / stage, device=device)
            entry.update(steps=result["step"], train_s=result["seconds"], batch=cfg["batch_size"],
                         crop=cfg["crop"], losses={k: round(v, 5) for k, v in result["losses"].items()})
            entry["crops_per_s"] = round(result["step"] * int(cfg["batch_size"])
                                         / max(1e-9, result["seconds"]), 1)
            entry["device"] = result["device"]
            entry["precision"] = cfg["precision"]
            done.append(stage)
            del result
        except Exception as exc:  # noqa: BLE001 - one failed stage must not cost the others their time
            entry["error"] = f"{type(exc).__name__}: {exc}"
            log(f"[leg] {stage} FAILED: {entry['error']}\n{traceback.format_exc()}")
        entry["wall_s"] = round(time.time() - t0, 1)
        summary["stages"][stage] = entry
        _write_summary(out, summary)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    weights = work / "weights"
    global_done = [s for s in done if s in GLOBAL_STAGES]
    if done:
        summary.update(_export(runs, weights, done, init_from, summary))
        summary["weights_parts"] = _bundle_weights(weights, out)
    _write_summary(out, summary)
    if evaluate and global_done:
        try:
            summary["evaluation"] = quick_evaluate({"new": weights, "init_from": init_from},
                                                   crops=1 if smoke else 2, size=128 if smoke else 256,
                                                   log=log)
        except Exception as exc:  # noqa: BLE001 - the weights are already out; say why there is no table
            summary["evaluation"] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"[leg] evaluation FAILED: {exc}")
    _bundle_logs(runs, out)
    summary["wall_s"] = round(time.time() - t_start, 1)
    _write_summary(out, summary)
    log(f"[leg] done in {summary['wall_s']:.0f} s: trained {', '.join(done) or 'nothing'}; results in {out}")
    return summary


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, out / "summary.json")


def _export(runs: Path, weights: Path, done: list[str], init_from: Path, summary: dict[str, Any]
            ) -> dict[str, Any]:
    from oldphoto.train.export import export_runs

    def note(start: str) -> str:
        text = (f"GPU leg of {summary['started']} ({summary['gpu'] or 'CPU'}, torch {summary['torch']}), "
                f"{start}; per stage: "
                + "; ".join(f"{s} {e['steps']} steps in {e['train_s']:.0f} s ({e['precision']})"
                            for s, e in summary["stages"].items() if "steps" in e) + ".")
        return ("SMOKE RUN (tiny batches, not for use). " + text) if summary["smoke"] else text

    if weights.exists():
        shutil.rmtree(weights)
    written = export_runs(runs, weights, stages=[s for s in done if s != "face"],
                          notes={"*": note(f"warm-started from {init_from.name}")})
    if "face" in done:  # float16, as a face model is bundled (and half the bytes to send back)
        start = summary["stages"]["face"].get("init_from")
        face_note = note(f"warm-started from {start}" if start else "from scratch")
        written.update(export_runs(runs, weights, stages=["face"], half=True, notes={"*": face_note}))
    copied = []
    # a leg of the global stages returns a complete global set (what it did not train, from init_from);
    # a face leg returns only its face model: with the global set it would not fit the device's 64 MiB
    for card in sorted(init_from.glob("*.json")) if any(s in GLOBAL_STAGES for s in done) else ():
        role = card.stem
        if role.startswith("face_"):
            continue
        if role not in written and (init_from / f"{role}.safetensors").is_file():
            shutil.copy2(card, weights / card.name)
            shutil.copy2(init_from / f"{role}.safetensors", weights / f"{role}.safetensors")
            copied.append(role)
    return {"exported_roles": sorted(written), "copied_roles": copied}


def _bundle_weights(weights: Path, out: Path) -> list[str]:
    """``weights.tar.part0``, ``part1``, …: the folder as one tar cut into pieces (cat them to rebuild)."""
    for old in out.glob("weights.tar.part*"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "weights.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(weights, arcname="weights")
        parts = []
        with open(tar_path, "rb") as f:
            i = 0
            while chunk := f.read(PART_BYTES):
                name = f"weights.tar.part{i}"
                (out / name).write_bytes(chunk)
                parts.append(name)
                i += 1
    return parts


def _bundle_logs(runs: Path, out: Path) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if info.name.endswith(("checkpoint.pt", ".tmp")) else info

    tmp = out / "runs_logs.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(runs, arcname="runs", filter=keep)
    os.replace(tmp, out / "runs_logs.tar.gz")


def quick_evaluate(folders: dict[str, Path], crops: int = 2, size: int = 256, log=print) -> dict[str, Any]:
    """The held-out table of :mod:`oldphoto.train.evaluate` for several weights folders on the same crops."""
    from oldphoto.train.evaluate import (
        evaluate_restoration,
        evaluation_restorer,
        heldout_cases,
        markdown_table,
    )

    cases, used = heldout_cases(crops=crops, size=size)
    results: dict[str, Any] = {"heldout_source": used, "cases": len(cases)}
    for name, folder in folders.items():
        t0 = time.time()
        res = evaluate_restoration(evaluation_restorer(weights=folder), cases, pipeline=True)
        results[name] = res
        log(f"[leg] evaluation of {name} ({folder}) on {len(cases)} cases of {used}, "
            f"{time.time() - t0:.0f} s:\n{markdown_table(res)}")
    return results


# ------------------------------------------------------------------------------------------------ import
def _unpack_parts(folder: Path, into: Path) -> Path:
    """Rebuild ``weights.tar`` from ``weights.tar.part0…`` and extract its plain files into ``into``."""
    parts = sorted(folder.glob("weights.tar.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1] or -1))
    tar_path = into / "weights.tar"
    with open(tar_path, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    out = into / "weights"
    out.mkdir()
    try:
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if member.isdir() and name == Path("weights"):
                    continue
                # only weights/<role>.json|.safetensors: nothing that could land outside the folder
                if (not member.isfile() or name.parent != Path("weights")
                        or name.suffix not in (".json", ".safetensors")):
                    raise ValueError(f"{folder}: unexpected entry {member.name!r} in the weights tar")
                data = tar.extractfile(member)
                assert data is not None
                (out / name.name).write_bytes(data.read())
    except tarfile.TarError as exc:
        raise ValueError(f"{folder}: broken weights tar ({exc}); were all parts fetched?") from exc
    return out


def import_leg(source: str | Path, dest: str | Path, metrics: dict[str, Any] | None = None,
               replace: bool = False) -> list[str]:
    """Copy a leg's weights into ``dest``: ``source`` is the folder the leg's ``weights.tar.part*`` came
    back in, or a weights folder.  Every role is checked to load before anything is written; cards keep
    all their fields (a detector calibration too), ``metrics`` (the output of ``oldphoto train evaluate``)
    replaces their metrics.  Existing roles in ``dest`` are only replaced with ``replace``."""
    from oldphoto.files import atomic_write_bytes, atomic_write_text
    from oldphoto.weights import load_model

    source, dest = Path(source), Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        folder = _unpack_parts(source, Path(tmp)) if any(source.glob("weights.tar.part*")) else source
        roles = sorted(p.stem for p in folder.glob("*.safetensors"))
        if not roles:
            raise FileNotFoundError(f"{source}: neither weights.tar.part* nor <role>.safetensors files")
        for role in roles:
            if not (folder / f"{role}.json").is_file():
                raise ValueError(f"{folder / role}.safetensors has no card")
            load_model(role, weights_dir=folder)  # strict: a broken or mismatched file stops here
        clash = [r for r in roles if (dest / f"{r}.safetensors").exists()]
        if clash and not replace:
            raise FileExistsError(f"{dest} already holds {', '.join(clash)}: pass --replace to overwrite")
        dest.mkdir(parents=True, exist_ok=True)
        for role in roles:
            card = json.loads((folder / f"{role}.json").read_text(encoding="utf-8"))
            if metrics is not None:
                card["metrics"] = metrics
            blob = (folder / f"{role}.safetensors").read_bytes()
            atomic_write_bytes(dest / f"{role}.safetensors", blob)
            text = json.dumps(card, indent=2) + "\n"
            atomic_write_text(dest / f"{role}.json", text)
    return roles
