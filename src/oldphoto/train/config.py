"""Training configuration files: JSON with a ``common`` section and one section per stage.

``--config`` takes a file path or the name of a packaged preset (``tiny``, ``small``, ``official``) from
``oldphoto/train/configs/``.  The resolved config of a stage = ``common`` deep-merged with
``stages[<stage>]``, then ``--set key=value`` overrides (values parsed as JSON when possible).
String values may contain ``{runs}``: the folder holding every stage's run directory (the parent of
``--out``), so that the mapping stage can find ``{runs}/vae_a``.  Data locations are not written into the
presets: photos come from the corpus (``$OLDPHOTO_CORPUS``), real old photos also from
``$OLDPHOTO_REAL_OLD`` (see :func:`oldphoto.train.data.real_old_sources`), or from ``--set``/``--data``.

Every key is checked against the stage's schema (:mod:`oldphoto.train.schema`, where the defaults live):
a key of ``stages[<stage>]`` or ``--set`` must be a setting of that stage; a key of ``common`` (shared by
every stage) must be a setting of some stage and is dropped where the stage does not read it.  Unknown
keys and values of the wrong type raise :class:`ConfigError`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from oldphoto.train import schema
from oldphoto.train.schema import ConfigError

__all__ = ["ConfigError", "config_path", "deep_merge", "load_stage_config", "parse_override", "preset_names"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


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


def _nested(keys: list[str], value: Any) -> dict[str, Any]:
    """``a.b.c=v`` as ``{"a": {"b": {"c": v}}}``."""
    for k in reversed(keys):
        value = {k: value}
    return value


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if k != schema.COMMENT}
    return value


def load_stage_config(name_or_path: str, stage: str, overrides: list[str] | None = None,
                      runs_dir: str | Path | None = None, *,
                      shared_overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved, checked config of ``stage``, every setting present (defaults from the schema).

    ``overrides``: ``key=value`` of this stage (an unknown key is an error); ``shared_overrides``: given
    for every stage (``oldphoto train leg --set``), so applied only where the stage has the key."""
    path = config_path(name_or_path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON config ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict):
        raise ConfigError(f"{path}: a training config needs a 'stages' section")
    unknown = sorted(set(doc) - {"common", "stages", schema.COMMENT})
    if unknown:
        hint = schema.suggest(unknown[0], ("common", "stages"))
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}{hint} "
                          "(a config has 'common', 'stages' and '_doc')")
    for name in doc["stages"]:
        if name != schema.COMMENT and name not in schema.STAGE_NAMES:
            hint = schema.suggest(name, schema.STAGE_NAMES)
            raise ConfigError(f"{path}: stages: unknown stage {name!r}{hint}")
    if stage not in doc["stages"]:
        raise ConfigError(f"{path}: no section for stage {stage!r} (has: {', '.join(doc['stages'])})")
    common, section = _strip_comments(doc.get("common", {})), _strip_comments(doc["stages"][stage])
    if not isinstance(common, dict):
        raise ConfigError(f"{path}: 'common' must be an object")
    common = schema.for_stage(stage, common, f"{path}: common")
    schema.check(stage, common, f"{path}: common")
    schema.check(stage, section, f"{path}: stages.{stage}")
    cfg = deep_merge(common, section)
    sets = [(text, True) for text in overrides or []] + [(text, False) for text in shared_overrides]
    for text, strict in sets:
        keys, value = parse_override(text)
        where = f"--set {text}"
        if not strict and not schema.applies(stage, keys, where):
            continue
        schema.check(stage, _nested(keys, value), where)
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    cfg = _substitute(cfg, str(runs_dir) if runs_dir is not None else "runs")
    cfg = schema.resolve(stage, cfg, f"{path}: stage {stage}")
    cfg["config_name"] = path.stem
    return cfg
