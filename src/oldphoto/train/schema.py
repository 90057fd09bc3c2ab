"""The training settings: every key a stage reads, its type and its default, in one place.

A stage's resolved config (:func:`oldphoto.train.config.load_stage_config`, and again in
:func:`oldphoto.train.trainer.train` for a dict built by hand) is checked against the dataclass of its
stage family and completed with that dataclass' defaults, so the code reads ``cfg["x"]`` and never
carries a default of its own.  A key the stage does not know is an error that names the key, the stage
and the closest known key; so is a value of the wrong type.

* :class:`Common`: what every stage reads (the trainer's loop, the optimisers, crops, ``nets``);
* :class:`VAESettings` (``vae_a``, ``vae_b``), :class:`MappingSettings` (``mapping_*``),
  :class:`DetectorSettings`, :class:`DenoiserSettings`, :class:`FaceSettings`;
* ``nets.<KEY>``: the constructor arguments of the stage's networks (:data:`STAGE_NETS`, checked against
  the constructors' signatures in :mod:`oldphoto.nets`), with the stage's own defaults.

Keys the code writes itself (:data:`RECORDED`: which preset, device, photo sources, faces were used) are
facts recorded in ``config.json`` and checkpoints, not settings: a preset or ``--set`` cannot give them.
``_doc`` keys in a preset are comments.  This module imports neither torch nor the networks until a
``nets`` section is checked.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

PRECISIONS = ("fp32", "bf16")  # the trainer maps them to autocast dtypes
GAN_MODES = ("lsgan", "hinge")
COMMENT = "_doc"

#: keys the code writes into a run's config (facts, not settings) -> what they record
RECORDED = {
    "config_name": "the preset or config file the run was loaded from",
    "device_used": "the device the trainer ran on",
    "photo_source_used": "the clean-photo source that worked (first of `photos`)",
    "real_old_used": "the real-old source that worked (VAE_A)",
    "faces_used": "how many faces the face stage loaded",
    "vaes_used": "fingerprints of the frozen VAE_A and VAE_B a mapping trained on (export checks them)",
}


class ConfigError(ValueError):
    """A training config that cannot be used: unreadable, an unknown key, a value of the wrong type."""


# ---------------------------------------------------------------------------------------------------------
# settings (the field types are checked against the JSON values; ``None`` where allowed means "not set")
@dataclass(frozen=True)
class Common:
    """Read by every stage: the trainer's loop and checkpoints, the optimisers, batches, networks."""

    seed: int = 0  # seeds the data stream, the initial weights and every RNG
    steps: int = 1000  # total steps (an upper bound when time_budget is set)
    decay_start: int | None = None  # step where the LR starts its linear decay to 0; None: steps // 2
    time_budget: float | None = None  # seconds of training, then stop (the LR decays over time); None/0: off
    time_decay_start: float = 0.5  # with time_budget: fraction of the budget where the LR decay starts
    lr: float = 2e-4  # Adam learning rate of every network
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas
    batch_size: int = 4  # crops per step and process
    crop: int = 128  # crop side in pixels (the face stage trains on whole aligned faces of nets.G.size)
    log_every: int = 10  # steps between logged losses
    sample_every: int = 200  # steps between PNG sample sheets
    checkpoint_every: int = 200  # steps between checkpoints (one is always written at the end)
    init_from: str | None = None  # warm start: a run directory, checkpoint or weights folder
    precision: Literal[PRECISIONS] = "fp32"  # bf16: forward passes under bfloat16 autocast
    channels_last: bool = False  # NHWC networks and batches (faster convolutions on GPUs)
    data_workers: int = 0  # DataLoader processes cutting crops (0: in-process, the reproducible stream)
    find_unused_parameters: bool = False  # DDP's flag, for networks with branches a step may skip
    leg_share: float = 1.0  # `oldphoto train leg`: this stage's share of the leg's time budget
    nets: dict[str, Any] = field(default_factory=dict)  # network key -> constructor arguments


@dataclass(frozen=True)
class _Photos:
    """Stages that cut crops of clean photos."""

    photos: str | list[str] = field(default_factory=lambda: ["corpus:train", "skimage"])  # first that works
    max_side: int = 768  # photos are fitted to this longest side when loaded


@dataclass(frozen=True)
class _Adversarial:
    """Stages with a GAN and a perceptual loss."""

    gan_mode: Literal[GAN_MODES] = "lsgan"  # GAN loss form (pix2pixHD's LSGAN or SPADE's hinge)
    gan_start: int = 0  # step where the GAN terms start (a reconstruction warm-up before)
    lambda_gan: float = 1.0  # GAN weight; 0 = no discriminator is built
    lambda_feat: float = 10.0  # discriminator feature-matching weight
    lambda_vgg: float = 10.0  # perceptual (VGG) loss weight
    vgg19: str | None = None  # VGG19 state dict for the perceptual loss; None: the ImageNet VGG16
    vgg_layers: int = 5  # VGG taps the perceptual loss uses


@dataclass(frozen=True)
class VAESettings(Common, _Photos, _Adversarial):
    """``vae_b`` (clean photos) and ``vae_a`` (real old + synthetic degraded photos, latent D)."""

    level_align: bool = False  # image losses see the output's levels fitted to the input
    degradation: str | list[str] = "mixed"  # vae_a: synthesis kind(s) of its synthetic half, drawn per crop
    latent_noise: float = 1.0  # std of the noise added to the latent in training (1 = the official VAE)
    lambda_kl: float = 1.0  # KL weight
    lambda_l1: float = 10.0  # reconstruction L1 weight (the paper's alpha)
    vgg_start: int = 0  # step where the perceptual loss starts
    real_old: str | list[str] | None = None  # vae_a: real old photo sources (then $OLDPHOTO_REAL_OLD)
    lambda_latent_gan: float = 1.0  # vae_a: latent discriminator weight; 0 = none
    latent_gan_start: int = 0  # vae_a: step where the latent GAN starts


@dataclass(frozen=True)
class MappingSettings(Common, _Photos, _Adversarial):
    """``mapping_quality``, ``mapping_scratch``, ``mapping_hr``: a latent mapping between frozen VAEs."""

    vae_a: str | None = None  # VAE_A run directory or weights folder (required)
    vae_b: str | None = None  # VAE_B run directory or weights folder (required)
    level_align: bool = False  # image losses see the output's levels fitted to the degraded input
    degradation: str | list[str] = "unstructured"  # mapping_quality: synthesis kind(s), drawn per crop
    p_no_hole: float = 0.3  # scratch/HR mappings: share of crops without structured defects
    lambda_latent: float = 60.0  # latent L1 weight (the paper's lambda1)
    lambda_image_l1: float = 0.0  # L1 of the decoded image against the clean crop


@dataclass(frozen=True)
class DetectorSettings(Common, _Photos):
    """``detector``: scratch segmentation on synthetic defects."""

    degradation: str | list[str] = "mixed"  # synthesis kind(s) of the defect crops, drawn per crop
    p_clean: float = 0.0  # share of defect-free old-look crops (negatives)
    p_sharp_clean: float = 0.0  # share of sharp defect-free crops with scene content (negatives)
    # a folder of crops of clean photos where the detector fired (scripts/mine_hard_negatives.py) and
    # the share of crops taken from it, defect-free (negatives)
    hard_negatives: str | None = None
    p_hard: float = 0.0
    synth: dict[str, Any] = field(default_factory=dict)  # DegradeConfig fields (e.g. p_content)
    focal_gamma: float = 0.2  # focal loss gamma
    focal_beta: float = 10.0  # focal loss weight (the paper's beta)


@dataclass(frozen=True)
class DenoiserSettings(Common, _Photos):
    """``denoiser``: ``--remove-grain``'s luma denoiser (non-local means' place away from the defects)."""

    degradation: str | list[str] = field(default_factory=lambda: ["unstructured", "oldlook"])  # per crop
    p_clean: float = 0.15  # share of clean crops (input = target: a clean photo must come back as it was)


@dataclass(frozen=True)
class FaceSettings(Common, _Adversarial):
    """``face``: the face generator on aligned faces (optionally behind a frozen stage-1 chain)."""

    gan_mode: Literal[GAN_MODES] = "hinge"  # SPADE's hinge loss
    faces: str | list[str] | None = None  # folder(s) of aligned face crops (required)
    vae_a: str | None = None  # stage-1 chain (all three or none): VAE_A run or weights folder
    vae_b: str | None = None  # stage-1 chain: VAE_B
    mapping: str | None = None  # stage-1 chain: quality mapping
    face_degradation: dict[str, Any] = field(default_factory=dict)  # FaceDegradeConfig fields
    vgg_crop: int = 0  # perceptual loss on one random square of this side (0: the whole face)
    lambda_image_l1: float = 0.0  # pixel L1 against the clean face


STAGE_SETTINGS: dict[str, type[Common]] = {
    "vae_a": VAESettings,
    "vae_b": VAESettings,
    "mapping_quality": MappingSettings,
    "mapping_scratch": MappingSettings,
    "mapping_hr": MappingSettings,
    "detector": DetectorSettings,
    "denoiser": DenoiserSettings,
    "face": FaceSettings,
}
STAGE_NAMES = tuple(STAGE_SETTINGS)


@dataclass(frozen=True)
class NetSpec:
    arch: str  # the architecture name in oldphoto.nets
    defaults: dict[str, Any] = field(default_factory=dict)  # the stage's defaults over the constructor's


_D3 = NetSpec("multiscale_discriminator", {"in_channels": 3})
_D6 = NetSpec("multiscale_discriminator", {"in_channels": 6})  # conditional: input ⊕ output
#: each stage's networks (``nets.<KEY>``); arguments derived from other networks (a mapping's
#: latent_channels, the latent D's in_channels) are filled in by the stage when it builds them
STAGE_NETS: dict[str, dict[str, NetSpec]] = {
    "vae_b": {"G": NetSpec("vae", {"width": 64}), "D": _D3},
    "vae_a": {"G": NetSpec("vae", {"width": 64}), "D": _D3, "DL": NetSpec("latent_discriminator")},
    "mapping_quality": {"M": NetSpec("mapping_quality"), "D": _D6},
    "mapping_scratch": {"M": NetSpec("mapping_scratch"), "D": _D6},
    "mapping_hr": {"M": NetSpec("mapping_patch_attention"), "D": _D6},
    "detector": {"N": NetSpec("detector", {"width": 64, "depth": 4})},
    "denoiser": {"N": NetSpec("luma_denoiser")},
    "face": {"G": NetSpec("face_generator", {"size": 256}),
             "D": NetSpec("multiscale_discriminator", {"in_channels": 6, "spectral_norm": True})},
}


# ---------------------------------------------------------------------------------------------------------
def settings_class(stage: str) -> type[Common]:
    try:
        return STAGE_SETTINGS[stage]
    except KeyError:
        raise ConfigError(f"unknown stage {stage!r}{suggest(stage, STAGE_NAMES)}; "
                          f"stages: {', '.join(STAGE_NAMES)}") from None


@functools.cache
def setting_types(stage: str) -> dict[str, Any]:
    """Setting name -> type of ``stage``."""
    return typing.get_type_hints(settings_class(stage))


def defaults(stage: str) -> dict[str, Any]:
    """Every setting of ``stage`` at its default (``nets`` with the stage's network defaults)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings_class(stage)):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = list(value) if isinstance(value, tuple) else value  # as JSON gives it back
    out["nets"] = {k: dict(spec.defaults) for k, spec in STAGE_NETS[stage].items()}
    return out


def stages_with(key: str) -> list[str]:
    return [s for s in STAGE_NAMES if key in setting_types(s)]


def suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@functools.cache
def _all_settings() -> frozenset[str]:
    return frozenset(k for s in STAGE_NAMES for k in setting_types(s))


def _unknown_key(stage: str, key: str, where: str) -> ConfigError:
    if key in RECORDED:
        return ConfigError(f"{where}: {key!r} is recorded by the trainer ({RECORDED[key]}), not a setting")
    known = setting_types(stage)
    others = stages_with(key)
    if others:
        return ConfigError(f"{where}: {key!r} is not a setting of stage {stage} (only of "
                           f"{', '.join(others)}){suggest(key, known)}")
    return ConfigError(f"{where}: unknown setting {key!r} for stage {stage}"
                       f"{suggest(key, set(known) | _all_settings())}")


def _conforms(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and Ellipsis not in args:
            return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args, strict=True))
        return all(_conforms(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _type_text(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("NoneType", "null")


# counts that must be at least 1 (0 or less failed deep in the loop: "need at least one array to stack")
AT_LEAST_ONE = ("steps", "batch_size", "crop", "log_every", "sample_every", "checkpoint_every")


def check(stage: str, cfg: dict[str, Any], where: str, *, recorded: bool = False) -> None:
    """Raise :class:`ConfigError` for a key ``stage`` does not know or a value of the wrong type.

    ``cfg`` may be partial (one preset section, one ``--set``).  ``recorded``: the keys of
    :data:`RECORDED` are allowed (a run's config, written by the trainer)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    hints = setting_types(stage)
    for key, value in cfg.items():
        if key == COMMENT or (recorded and key in RECORDED):
            continue
        if key not in hints:
            raise _unknown_key(stage, key, where)
        if not _conforms(value, hints[key]):
            raise ConfigError(f"{where}: stage {stage}: {key!r} must be {_type_text(hints[key])}, "
                              f"got {value!r} ({type(value).__name__})")
        if key in AT_LEAST_ONE and value < 1:
            raise ConfigError(f"{where}: stage {stage}: {key!r} must be at least 1, got {value!r}")
    if "nets" in cfg:
        check_nets(stage, cfg["nets"], where)
    if "synth" in cfg:
        from oldphoto.synth.degrade import DegradeConfig

        _check_fields(cfg["synth"], DegradeConfig, "synth", where, exclude=("kind",))
    if "face_degradation" in cfg:
        from oldphoto.synth.face_degrade import FaceDegradeConfig

        _check_fields(cfg["face_degradation"], FaceDegradeConfig, "face_degradation", where)
    if "degradation" in cfg:
        from oldphoto.synth.degrade import KINDS

        kinds = [cfg["degradation"]] if isinstance(cfg["degradation"], str) else cfg["degradation"]
        for kind in kinds:
            if kind not in KINDS:
                raise ConfigError(f"{where}: stage {stage}: unknown degradation kind {kind!r}"
                                  f"{suggest(kind, KINDS)}; kinds: {', '.join(KINDS)}")


def _check_fields(section: dict[str, Any], cls: type, name: str, where: str, exclude=()) -> None:
    known = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    for key in section:
        if key not in known:
            raise ConfigError(f"{where}: unknown {name} option {key!r}{suggest(key, known)} "
                              f"(the fields of {cls.__name__})")


def check_nets(stage: str, nets: dict[str, Any], where: str) -> None:
    """Each ``nets.<KEY>`` must be a network of ``stage`` and its keys arguments of its constructor."""
    specs = STAGE_NETS[stage]
    for key, args in nets.items():
        if key == COMMENT:
            continue
        if key not in specs:
            raise ConfigError(f"{where}: stage {stage} has no network {key!r}{suggest(key, specs)} "
                              f"(its networks: {', '.join(specs)})")
        if not isinstance(args, dict):
            raise ConfigError(f"{where}: nets.{key} must be an object of constructor arguments, got {args!r}")
        params = constructor_parameters(specs[key].arch)
        for name, value in args.items():
            if name == COMMENT:
                continue
            if name not in params:
                raise ConfigError(f"{where}: stage {stage}: nets.{key} ({specs[key].arch}) has no argument "
                                  f"{name!r} (its arguments: {', '.join(params)}){suggest(name, params)}")
            tp = params[name]
            if tp in (int, float, bool, str) and not _conforms(value, tp):
                raise ConfigError(f"{where}: stage {stage}: nets.{key}.{name} must be {tp.__name__}, "
                                  f"got {value!r} ({type(value).__name__})")


@functools.cache
def constructor_parameters(arch: str) -> dict[str, Any]:
    """Argument name -> annotated type of the constructor of ``arch`` (``Any`` where not annotated)."""
    import inspect

    from oldphoto.nets import architecture

    cls = architecture(arch)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: check the names only
        hints = {}
    return {name: hints.get(name, Any) for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def applies(stage: str, keys: list[str], where: str) -> bool:
    """Whether a dotted key given for every stage (a preset's ``common``, the leg's ``--set``) is one of
    ``stage``'s; a key no stage has is an error, one of other stages is False (it is theirs)."""
    top = keys[0]
    if top == COMMENT:
        return False
    if top not in _all_settings():
        raise _unknown_key(stage, top, where)
    if top not in setting_types(stage):
        return False
    if top == "nets" and len(keys) > 1:
        if keys[1] == COMMENT:
            return False
        if keys[1] not in STAGE_NETS[stage]:
            if any(keys[1] in nets for nets in STAGE_NETS.values()):
                return False
            raise ConfigError(f"{where}: no stage has a network {keys[1]!r}")
    return True


def for_stage(stage: str, shared: dict[str, Any], where: str) -> dict[str, Any]:
    """The part of a section shared by every stage (a preset's ``common``) that ``stage`` reads."""
    out: dict[str, Any] = {}
    for key, value in shared.items():
        if key == "nets" and isinstance(value, dict):
            nets = {k: v for k, v in value.items() if applies(stage, ["nets", k], where)}
            if applies(stage, ["nets"], where):
                out["nets"] = nets
        elif applies(stage, [key], where):
            out[key] = value
    return out


def resolve(stage: str, cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """``cfg`` checked and completed with the defaults of ``stage`` (a new dict; :data:`RECORDED` keys
    are kept, ``_doc`` comments dropped)."""
    check(stage, cfg, where, recorded=True)
    out = defaults(stage)
    for key, value in cfg.items():
        if key == COMMENT:
            continue
        if key == "nets":
            for net, args in value.items():
                if net != COMMENT:
                    out["nets"][net] = {**out["nets"].get(net, {}),
                                        **{k: v for k, v in args.items() if k != COMMENT}}
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_stored(stage: str, cfg: Any, where: str) -> None:
    """The config stored in a run's checkpoint: the stage's settings and the recorded facts.

    Runs written before configs were resolved per stage also carry the settings of other stages (a
    preset's whole ``common`` section): those are tolerated, unknown keys are not."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: the stored config is not an object")
    own = set(setting_types(stage))
    check(stage, {k: v for k, v in cfg.items() if k in own}, where)
    everything = _all_settings()
    for key in cfg:
        if key != COMMENT and key not in RECORDED and key not in everything:
            raise ConfigError(f"{_unknown_key(stage, key, where)} (the run's stored config; a setting "
                              f"that no longer exists: this run cannot be resumed or exported as it is)")
