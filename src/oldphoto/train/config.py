"""Training configuration files: JSON with a ``common`` section and one section per stage.

``--config`` takes a file path or the name of a packaged preset (``tiny``, ``small``, ``official``) from
``oldphoto/train/configs/``.  The resolved config of a stage = ``common`` deep-merged with
``stages[<stage>]``, then ``--set key=value`` overrides (values parsed as JSON when possible).
String values may contain ``{runs}``: the folder holding every stage's run directory (the parent of
``--out``), so that the mapping stage can find ``{runs}/vae_a``.  Data locations are not written into the
presets: photos come from the corpus (``$OLDPHOTO_CORPUS``), real old photos also from
``$OLDPHOTO_REAL_OLD`` (see :func:`oldphoto.train.data.real_old_sources`), or from ``--set``/``--data``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    pass


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = CONFIG_DIR / f"{name_or_path}.json"
    if preset.is_file():
        return preset
    raise ConfigError(f"{name_or_path}: no such config file or preset (presets: {', '.join(preset_names())})")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value (dotted keys allowed, e.g. nets.G.width=32)")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def _substitute(value: Any, runs: str) -> Any:
    if isinstance(value, str):
        return value.replace("{runs}", runs)
    if isinstance(value, dict):
        return {k: _substitute(v, runs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, runs) for v in value]
    return value


def load_stage_config(name_or_path: str, stage: str, overrides: list[str] | None = None,
                      runs_dir: str | Path | None = None) -> dict[str, Any]:
    path = config_path(name_or_path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON config ({exc})") from exc
    if not isinstance(doc, dict) or "stages" not in doc:
        raise ConfigError(f"{path}: a training config needs a 'stages' section")
    if stage not in doc["stages"]:
        raise ConfigError(f"{path}: no section for stage {stage!r} (has: {', '.join(doc['stages'])})")
    cfg = deep_merge(doc.get("common", {}), doc["stages"][stage])
    for text in overrides or []:
        keys, value = parse_override(text)
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    cfg["config_name"] = path.stem
    return _substitute(cfg, str(runs_dir) if runs_dir is not None else "runs")
