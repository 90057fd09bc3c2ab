"""The in-process restoration pipeline: defects → global restoration → faces (→ unfading, enlarging).

``Restorer(options).restore(image, mask=None) -> Result`` restores one photo (numpy float32 RGB ``H×W×3``
in [0, 1]); a Restorer loads each model at most once (on first use) and can restore any number of photos.
``RestoreOptions`` holds every option of ``oldphoto restore`` that affects pixels, devices or weights and
adds them to an argparse parser.  Reading and writing files, metadata and mask pairing by file stem are
done by :mod:`oldphoto.batch`; the semantics of a given mask are handled here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oldphoto.io.photo import MIN_SIDE, too_small
from oldphoto.luma import luma
from oldphoto.masks import dilate
from oldphoto.modes import DefaultMode, Mode, OfficialMode
from oldphoto.nets import width_ratio
from oldphoto.nets.descriptors import FACE_ROLES, UPSCALE_ROLE, descriptor
from oldphoto.nets.inference import InferenceOptions, prepare
from oldphoto.options import DEFAULT_FIDELITY, RestoreOptions, parse_memory
from oldphoto.stages.defects import (
    DETECTOR,
    DETECTOR_MULTIPLE,
    OFFICIAL_THRESHOLD,
    Defects,
    DefectStage,
    detection_short_side,
    find_defects,
    needs_inpainting,
)
from oldphoto.stages.dust import find_dust
from oldphoto.stages.faces import FaceDetector, FaceInfo, FaceStage, detector_pixels, face_detection_available
from oldphoto.stages.fidelity import denoise_luma, denoise_luma_network
from oldphoto.stages.prints import Frame, pictures, print_on_surround
from oldphoto.stages.restore import (
    BYTES_PER_PIXEL,
    MIN_TILE_SIDE,
    PATH_MULTIPLE,
    PATH_ROLES,
    PathModels,
    RestoreStage,
    memory_scale,
    tile_side,
)
from oldphoto.stages.runtime import Runner, resolve_device
from oldphoto.stages.tiling import tile_side_for_budget
from oldphoto.stages.tone import Tone, fit_tone
from oldphoto.stages.unfade import unfaded
from oldphoto.stages.upscale import MIN_TILE as UPSCALE_MIN_TILE
from oldphoto.stages.upscale import UpscaleStage
from oldphoto.tensors import batch_to_images, images_to_batch
from oldphoto.weights.locate import chosen_weights_dir

__all__ = ["RestoreOptions", "Restorer", "Result", "FaceInfo", "PipelineError"]

log = logging.getLogger(__name__)

# face generator role per face size (256, 512)
UPSCALER = descriptor("rrdbnet")
# --remove-grain's learned denoiser of the photo away from the defects (bundled; not in the official release)
DENOISER = descriptor("luma_denoiser")
DENOISER_ROLE = DENOISER.roles[0].name
# --dark-dust leaves each face's box grown by this share of its side (the forehead, ears and neck)
FACE_AREA_MARGIN = 0.35
_face_notice_shown = False
_chain_notices_shown: set[str] = set()  # (each said once per process, as the face notice)
_bundled_notice_shown = False
UNFITTED = object()  # a photo's tone not fitted yet (Restorer.detect, Restorer.with_dust): fitted there
# said where the restoration's own networks are the package's small ones, so that nobody takes their
# result for what the paper's networks give (README, "Status, honestly")
BUNDLED_NOTICE = ("restoring with the small networks bundled with oldphoto (trained on a CPU: they denoise "
                  "and repair clear damage, little more); `oldphoto weights download` installs the "
                  "official ones")


class PipelineError(RuntimeError):
    """A configuration the pipeline cannot run (the message says what to change)."""


@dataclass
class Result:
    """What :meth:`Restorer.restore` returns."""

    image: np.ndarray  # float32 H×W×3 in [0,1], exactly the input's size (times --upscale)
    mask: np.ndarray | None  # bool, True = defect, the mask the restoration used (None: quality path)
    faces: list[FaceInfo]
    timings: dict[str, float]
    models: dict[str, str]
    path: str = "quality"  # quality: nothing repaired; scratch | hr: the path that repaired the defects
    # global restoration before faces; in compat mode the official stage-1 output at its ×4/×16 size
    stage1: np.ndarray | None = field(default=None, repr=False)
    defects: Defects | None = field(default=None, repr=False)  # what the detector found (or the user mask)
    fidelity: float | None = None  # None in compat mode
    # --unfade: how much the tones were stretched (the largest gain of the pictures' channels; 1: not at
    # all, the photo already reaching black and white); None without --unfade
    unfade_gain: float | None = None


def _missing_weights_error(role: str, weights_dir: Path | None) -> Exception:
    try:
        from oldphoto.weights import MissingWeightsError
    except ImportError:  # pragma: no cover - the weights package is part of the product
        return PipelineError(f"no weights for {role!r}: the oldphoto.weights package is not installed")
    where = weights_dir or "the user weights folder"
    if role == UPSCALE_ROLE:
        from oldphoto.weights.locate import missing_upscaler

        return MissingWeightsError(missing_upscaler(weights_dir))
    if role == DENOISER_ROLE:
        from oldphoto.weights import install_hint

        return MissingWeightsError(f"no weights for {role!r} (--remove-grain) in {where}: "
                                   f"{install_hint(role)}")
    return MissingWeightsError(
        f"no weights for {role!r} in {where} or the bundled weights. Download and import the official "
        "checkpoints with `oldphoto weights download` (or, with the files at hand, `oldphoto weights import "
        "global_checkpoints.zip face_checkpoints.zip`), or pass --weights DIR.")


@functools.cache
def _say_if_below_smallest_tiles(max_memory: str, budget: int) -> None:
    """Warn once per process and budget: a server's Restorer per job (``with_options``) said it each time."""
    # (official-size networks: the figures tiles are planned by, smaller ones need less)
    smallest = MIN_TILE_SIDE ** 2 * max(DETECTOR.tile_bytes_per_pixel, *BYTES_PER_PIXEL.values())
    if budget < smallest:
        from oldphoto.footprint import human_bytes

        log.warning("--max-memory %s is less than the smallest tiles (%d px) need, about %s: they are "
                    "used anyway, so more memory than that will be used", max_memory, MIN_TILE_SIDE,
                    human_bytes(smallest))


@functools.cache
def _say_if_no_weights_there(folder: Path, roles: tuple[str, ...]) -> None:
    """Warn once per process and folder: a weights folder holding none of the networks a restoration uses
    (a wrong or empty folder) left every one to the bundled weights without a word."""
    if not any((folder / f"{role}{ext}").is_file() for role in roles for ext in (".safetensors", ".json")):
        log.warning("weights folder %s holds none of the networks this restoration uses (%s): the bundled "
                    "weights are used", folder, ", ".join(roles))


class Restorer:
    """Restores photos with one set of loaded models.

    ``models`` (keyword only) supplies modules by role instead of loading weights files: for tests and
    benchmarks that build networks explicitly.  Product code leaves it None, and a role whose weights
    are not installed raises ``MissingWeightsError`` (never random weights).
    """

    def __init__(self, options: RestoreOptions | None = None, *,
                 models: Mapping[str, nn.Module] | None = None, **overrides: Any) -> None:
        options = dataclasses.replace(options or RestoreOptions(), **overrides)
        options.validate()
        self.options = options
        self.device = resolve_device(options.device)
        # how networks are put in their inference form (benchmarks may change it before the first load)
        self.inference = InferenceOptions.for_device(self.device)
        self.runner = Runner(self.device, options.precision)
        self.budget = parse_memory(options.max_memory)
        _say_if_below_smallest_tiles(options.max_memory, self.budget)
        self.notices: list[str] = []
        # told (stage, fraction done) during the long stages (--upscale on a CPU: minutes), for the CLI's
        # progress bar and the web page
        self.on_progress: Callable[[str, float], None] | None = None
        self._explicit = dict(models) if models is not None else None
        self._loaded: dict[str, nn.Module] = {}
        self._face_stage: FaceStage | None = None
        # by (detector, upsample, threshold): shared with the Restorers of with_options, as the models
        # are (each holds dlib's landmark model, 77 MB, loaded in about a second)
        self._face_detectors: dict[tuple[str, int | None, float], FaceDetector] = {}
        self._info: dict[str, str] | None = None
        self._card_values: dict[tuple[str, str], float] = {}
        self.mode: Mode = OfficialMode(self) if options.compat == "official" else DefaultMode(self)
        self.faces_enabled = self._decide_faces()
        if self._explicit is None:  # explicit modules (tests, benchmarks) are checked when used
            if options.weights is not None and not Path(options.weights).is_dir():
                # (else every role would silently come from the bundled weights, as from an empty folder)
                from oldphoto.weights import MissingWeightsError

                raise MissingWeightsError(
                    f"weights folder {options.weights} is not a folder (give the folder `oldphoto weights "
                    "import --dest` wrote, or leave weights unset for the installed weights)")
            roles = self.required_roles()
            for role in roles:
                if not self._available(role):
                    raise _missing_weights_error(role, options.weights)
            chosen = chosen_weights_dir(options.weights)  # --weights, else $OLDPHOTO_WEIGHTS
            if chosen is not None:
                _say_if_no_weights_there(chosen.resolve(), tuple(roles))
            self._check_chains()
            self._say_if_bundled()

    # Options every model depends on: a Restorer sharing models with another must agree on these.
    SHARED_OPTIONS = ("device", "weights")

    def with_options(self, **overrides: Any) -> Restorer:
        """A Restorer for other options that shares this one's loaded models (loaded or not yet), and
        its face detectors.

        A server that lets each user choose options keeps one copy of each model this way.  The
        Restorers must be used one at a time (models are not thread-safe); ``device`` and ``weights``
        cannot change, since the models are tied to them.
        """
        fixed = [name for name in self.SHARED_OPTIONS
                 if name in overrides and not self._same(name, overrides[name])]
        if fixed:
            raise ValueError(f"cannot change {', '.join(fixed)} of a Restorer that shares models")
        other = Restorer(dataclasses.replace(self.options, **overrides), models=self._explicit)
        other._loaded = self._loaded  # the same dict: a model loaded by either is there for both
        other._face_detectors = self._face_detectors
        return other

    def _same(self, name: str, value: Any) -> bool:
        """Whether option ``name`` at ``value`` is this Restorer's own: a device by the device it names
        (``auto`` and ``cpu`` on a machine without a GPU, ``cuda`` and ``cuda:0``)."""
        if name != "device":
            return value == getattr(self.options, name)
        try:
            device = resolve_device(value)
        except (ValueError, RuntimeError):  # (a device that is not there is not this one)
            return False
        return (device.type, device.index or 0) == (self.device.type, self.device.index or 0)

    # ----------------------------------------------------------------------------------- models
    def required_roles(self) -> list[str]:
        """Roles that must be installed for this configuration (checked up front, loaded lazily)."""
        roles = list(PATH_ROLES["quality"])
        if self.options.scratches != "off":
            roles += ["detector", "mapping_scratch", "vae_b_scratch"]
            if self.options.hr or self.mode.hr_by_size:
                roles.append("mapping_hr")
        if self.faces_enabled:
            roles.append(FACE_ROLES[self.face_size])
        if self.options.upscale > 1:
            roles.append(UPSCALE_ROLE)
        if self.uses_denoiser():
            roles.append(DENOISER_ROLE)
        return list(dict.fromkeys(roles))

    def _check_chains(self) -> None:
        """Say so when a path's encoder, mapping and decoder come from different folders: the lookup
        falls back role by role to the bundled weights, so a folder that lacks one of them runs it with
        a network trained on another latent space, and the result is wrong without any error."""
        from oldphoto.weights import find_card

        required = set(self.required_roles())
        for path, roles in PATH_ROLES.items():
            if not set(roles) <= required:
                continue
            folders: dict[str, list[str]] = {}
            for role in roles:
                card = find_card(role, self.options.weights)
                folder = str(card.path.parent) if card is not None and card.path is not None else "?"
                folders.setdefault(folder, []).append(role)
            if len(folders) > 1:
                where = "; ".join(f"{', '.join(r)} from {d}" for d, r in folders.items())
                notice = (f"the {path} path mixes networks of different weights folders ({where}): networks "
                          "trained apart do not fit together; put all of them in one folder")
                self.notices.append(notice)
                if notice not in _chain_notices_shown:
                    log.warning(notice)
                    _chain_notices_shown.add(notice)

    def _say_if_bundled(self) -> None:
        """:data:`BUNDLED_NOTICE`, once per process, where the quality path's mapping (the network every
        photo goes through) is the bundled one."""
        global _bundled_notice_shown
        from oldphoto.weights import bundled_weights_dir, find_card

        card = find_card(PATH_ROLES["quality"][1], self.options.weights)
        if card is None or card.path is None or card.path.resolve().parent != bundled_weights_dir():
            return
        self.notices.append(BUNDLED_NOTICE)
        if not _bundled_notice_shown:
            log.warning(BUNDLED_NOTICE)
            _bundled_notice_shown = True

    def _available(self, role: str) -> bool:
        if self._explicit is not None:
            return role in self._explicit
        try:
            from oldphoto.weights import find_card
        except ImportError:
            return False
        return find_card(role, self.options.weights) is not None

    def model(self, role: str) -> nn.Module:
        """The module for ``role``, loaded once."""
        if role not in self._loaded:
            if self._explicit is not None:
                if role not in self._explicit:
                    raise _missing_weights_error(role, self.options.weights)
                module = self._explicit[role].to(self.device).eval()
            else:
                from oldphoto.weights import load_model

                module = load_model(role, self.options.weights, device=str(self.device), dtype=torch.float32)
            for p in module.parameters():
                p.requires_grad_(False)
            # modules handed in (tests, benchmarks) keep their structure and state dict
            prepare(module, self.inference, owned=self._explicit is None)
            self._loaded[role] = module
        return self._loaded[role]

    def min_defect_area(self) -> float:
        """--scratches auto's area rule: the user's --scratch-min-area, else the mode's (none in default
        mode, where the defects' shapes decide: :meth:`Defects.worth_repairing`)."""
        if self.options.scratch_min_area is not None:
            return self.options.scratch_min_area
        return self.mode.min_defect_area

    def fidelity(self) -> float:
        """The user's --fidelity, else the one measured for the quality-path weights (their card), else
        :data:`DEFAULT_FIDELITY`."""
        if self.options.fidelity is not None:
            return self.options.fidelity
        return self._card_value("mapping_quality", "fidelity", DEFAULT_FIDELITY)

    def diffusion_depth(self, path: str) -> float:
        """The user's --diffusion-depth, else the one measured for the mapping that repairs on ``path``
        (its card), else 0: the networks fill every defect."""
        if self.options.diffusion_depth is not None:
            return self.options.diffusion_depth
        return self._card_value(PATH_ROLES[path][1], "diffusion_depth", 0.0)

    def texture_depth(self, path: str) -> float:
        """The user's --texture-depth, else the one measured for the mapping that repairs on ``path``
        (its card), else 0: no defect is filled with copied texture."""
        if self.options.texture_depth is not None:
            return self.options.texture_depth
        return self._card_value(PATH_ROLES[path][1], "texture_depth", 0.0)

    def _card_value(self, role: str, name: str, default: float) -> float:
        """Calibration ``name`` of the installed ``role``'s card (read once), else ``default`` (also for
        modules handed in, which have no card)."""
        key = (role, name)
        if key not in self._card_values:
            card = None
            if self._explicit is None:
                from oldphoto.weights import find_card

                card = find_card(role, self.options.weights)
            self._card_values[key] = default if card is None else card.calibration.get(name, default)
        return self._card_values[key]

    def mask_threshold(self) -> float:
        """The user's threshold, else the one calibrated for the detector's weights, else the official 0.4."""
        if self.options.mask_threshold is not None:
            return self.options.mask_threshold
        return self._default_threshold()

    def _default_threshold(self) -> float:
        """The threshold calibrated for the detector's weights (its card), else the official 0.4."""
        if not self.mode.calibrated_threshold:
            return OFFICIAL_THRESHOLD
        return self._card_value("detector", "threshold", OFFICIAL_THRESHOLD)

    def model_info(self) -> dict[str, str]:
        """role -> "source sha256[:12]" for every role this configuration uses (provenance tags)."""
        if self._info is None:
            self._info = self._model_info()
        return dict(self._info)

    def _model_info(self) -> dict[str, str]:
        info: dict[str, str] = {}
        for role in self.required_roles():
            if self._explicit is not None:
                if role in self._explicit:
                    info[role] = f"explicit {type(self._explicit[role]).__name__} (no weights file)"
                continue
            from oldphoto.weights import find_card

            card = find_card(role, self.options.weights)
            if card is not None:
                info[role] = f"{_card_field(card, 'source')} {_card_field(card, 'sha256')[:12]}".strip()
        return info

    def uses_denoiser(self) -> bool:
        """Whether the photo away from the defects is denoised by the ``denoiser`` network (--remove-grain,
        in the default mode, at a fidelity above 0)."""
        return self.options.remove_grain and not self.mode.official and self.fidelity() > 0.0

    def luma_denoiser(self) -> Callable[..., np.ndarray]:
        """What denoises the photo's luma away from the defects: with --remove-grain the ``denoiser``
        network, in strips that fit the memory budget, else non-local means.  Either takes ``exclude``,
        the detector's candidate regions, where the noise level is not read
        (:func:`oldphoto.stages.fidelity.noise_sigma`)."""
        if not self.options.remove_grain:
            return denoise_luma
        network = self.model(DENOISER_ROLE)
        per_pixel = DENOISER.tile_bytes_per_pixel * width_ratio(network)

        def denoise(y: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
            rows = int(self.budget // (per_pixel * max(1, y.shape[1])))
            return denoise_luma_network(y, network, self.runner, rows=max(64, rows), exclude=exclude)

        return denoise

    def path_models(self, path: str) -> PathModels:
        a, mapping, b = (self.model(r) for r in PATH_ROLES[path])
        return PathModels(a.encoder, mapping, b.decoder, masked=path != "quality", modules=[a, mapping, b])

    # ----------------------------------------------------------------------------------- faces
    @property
    def face_size(self) -> int:
        if self.options.face_size:
            return self.options.face_size
        preferred = 512 if self.options.hr else 256
        other = 256 if preferred == 512 else 512
        if not self._available(FACE_ROLES[preferred]) and self._available(FACE_ROLES[other]):
            return other
        return preferred

    def _decide_faces(self) -> bool:
        global _face_notice_shown
        wanted = self.options.faces
        weights_there = any(self._available(r) for r in FACE_ROLES.values())
        dlib_there = face_detection_available()
        if wanted is None:
            if weights_there and dlib_there:
                return True
            reason = ("no face weights are installed (`oldphoto weights download` fetches and imports "
                      "them)" if not weights_there
                      else "dlib-bin / face-recognition-models are not installed")
            notice = f"face enhancement is off: {reason}"
            self.notices.append(notice)
            if not _face_notice_shown:
                log.warning(notice)
                _face_notice_shown = True
            return False
        if wanted and not dlib_there:
            raise PipelineError("--faces needs the pip packages dlib-bin and face-recognition-models "
                                "(pip install 'oldphoto[faces]')")
        return bool(wanted)

    def face_stage(self) -> FaceStage:
        if self._face_stage is None:
            generator = self.model(FACE_ROLES[self.face_size])
            runner = self.runner

            def enhance(batch: np.ndarray) -> np.ndarray:
                return batch_to_images(runner(generator, images_to_batch(batch)))

            self._face_stage = FaceStage(enhance, self.face_size, self.face_detector(),
                                         self.options.face_batch, self.mode.official,
                                         self.options.face_detect_on, self.options.face_input)
        return self._face_stage

    def face_detector(self) -> FaceDetector | None:
        """The face detector of the face stage and of ``--dark-dust`` (None without dlib-bin and the
        face-recognition models)."""
        key = (self.options.face_detector, self.options.face_upsample, self.options.face_threshold)
        if key not in self._face_detectors and face_detection_available():
            self._face_detectors[key] = FaceDetector(*key)
        return self._face_detectors.get(key)

    def upscale_stage(self) -> UpscaleStage:
        """The ×2/×4 enlargement of ``--upscale``, tiled for the memory budget."""
        network = self.model(UPSCALE_ROLE)
        if self.options.tile:
            side = max(self.options.tile, UPSCALE_MIN_TILE)
        else:
            per_pixel = UPSCALER.tile_bytes_per_pixel * memory_scale([network])
            side = tile_side_for_budget(self.budget, per_pixel, 1, minimum=UPSCALE_MIN_TILE)
        return UpscaleStage(lambda x: self.runner(network, x), self.options.upscale, side)

    # ----------------------------------------------------------------------------------- stages
    def _tile(self, kind: str, shape: tuple[int, int] | None = None) -> int:
        """Largest tile side for the detector or a path: the memory budget over the bytes per pixel
        the loaded networks need at their widths (:func:`memory_scale`).

        The budget bounds a tile's area: a photo of ``shape`` whose area fits runs whole, whatever its
        aspect (a 2-megapixel 4:3 photo is wider than the square tile of the same area)."""
        if self.mode.whole_images:
            return 1 << 30
        if self.options.tile:
            return self.options.tile
        if kind == "detector":
            scale = memory_scale([self.model("detector")])
            side = tile_side_for_budget(self.budget, DETECTOR.tile_bytes_per_pixel * scale, DETECTOR_MULTIPLE,
                                        minimum=MIN_TILE_SIDE)
        else:
            side = tile_side(kind, self.budget, memory_scale([self.model(r) for r in PATH_ROLES[kind]]))
        if shape is not None and (shape[0] + 64) * (shape[1] + 64) <= side * side:
            return max(side, max(shape) + 64)  # + 64: room for the padding to the networks' multiple
        return side

    def _run_module(self, fn: Any, *tensors: torch.Tensor) -> torch.Tensor:
        return self.runner(fn, *tensors)

    def choose_path(self, defects: Defects | None, shape: tuple[int, int], user: bool = False) -> str:
        """quality when nothing is to be repaired; else scratch, or hr with --hr or above --hr-above
        megapixels.  ``user``: the mask came from the user (repaired as given: auto's area and shape
        rules judge the detector's evidence, not the user's marks)."""
        o = self.options
        if o.scratches == "off" or defects is None:
            return "quality"
        if not defects.mask.any() and not (self.mode.on_repairs_every_photo and o.scratches == "on"):
            return "quality"
        if o.scratches == "auto" and not user:
            if not needs_inpainting(defects.mask, self.min_defect_area()):
                return "quality"
            if self.mode.shape_rules and not defects.worth_repairing():
                return "quality"
        return self._repair_path(shape)

    @property
    def hr_above(self) -> float | None:
        """The megapixels above which defects take the HR path without --hr (None: only with --hr)."""
        return self.options.hr_above if self.mode.hr_by_size else None

    def _repair_path(self, shape: tuple[int, int]) -> str:
        """The path that repairs a photo of ``shape``: hr with --hr or above :attr:`hr_above`."""
        big = self.hr_above is not None and shape[0] * shape[1] > self.hr_above * 1e6
        return "hr" if (self.options.hr or big) else "scratch"

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """The detector's defect probability ``H×W`` on ``image``, as :meth:`detect` computes it (padded,
        tiled, at ``--detect-size``), before thresholding and the shape filter."""
        detector = self.model("detector")
        shape = np.shape(image)[:2]
        short_side = detection_short_side(self.options.detect_size, shape)
        whole = None if short_side else shape  # resized first: no shape known
        stage = DefectStage(lambda x: self.runner(detector, x), self.mask_threshold(), 0,
                            tile=self._tile("detector", whole), short_side=short_side)
        return stage.probabilities(_check_image(image))

    def networks(self, image: np.ndarray, path: str = "quality", mask: np.ndarray | None = None,
                 fit_levels: bool = True) -> np.ndarray:
        """One path's networks alone on the whole photo, as the default mode runs them (padded, tiled,
        levels fitted to the input unless ``fit_levels`` is False; ``mask``: the defects the scratch/HR
        path fills): no fidelity blend, local repair, tone or faces.  For evaluating the networks the
        pipeline uses (``oldphoto train evaluate``)."""
        if self.mode.official:
            raise PipelineError("Restorer.networks runs the default mode's stages (not --compat official)")
        stage = self.restore_stage(path, np.shape(image)[:2])
        stage.fit_levels = fit_levels
        return stage(_check_image(image), self.path_models(path), path, mask)

    def has_models(self, *roles: str) -> bool:
        """Whether the weights (or explicit modules) of all ``roles`` are there."""
        return all(self._available(role) for role in roles)

    def detection_scale(self, shape: tuple[int, int]) -> float:
        """How many times larger a photo of ``shape`` is than the size its defects are found at (1: its
        own size; it is never enlarged for them)."""
        short_side = detection_short_side(self.options.detect_size, shape)
        return min(shape) / short_side if short_side else 1.0

    def detect(self, image: np.ndarray, tone: Tone | None | object = UNFITTED) -> Defects:
        """The defects the detector finds on ``image`` (default mode), scene content filtered out.
        ``tone``: the photo's tone (:func:`fit_tone`: None for a colour photo) when it is fitted already,
        else it is fitted here; the colour rules read a gray or toned photo's colour beyond it.
        A print on a plain surround (a wide border, an album page, the scanner's bed) is judged as if it
        had been cropped (:func:`print_on_surround`): its strokes are measured in its own short sides, and
        the surround is never repaired."""
        found = print_on_surround(luma(image))
        if found is None:
            return self._detect(image, fit_tone(image) if tone is UNFITTED else tone)
        inner = self._detect(image[found.box], fit_tone(image[found.box]), found.frame)  # (the print's tone)
        mask = np.zeros(image.shape[:2], bool)
        mask[found.box] = inner.mask
        candidates = np.zeros(image.shape[:2], bool)
        candidates[found.box] = inner.candidates
        return dataclasses.replace(inner, mask=mask, print_box=found.box, candidates=candidates)

    def _detect(self, image: np.ndarray, tone: Tone | None, frame: Frame | None = None) -> Defects:
        # in a gray or toned photo colour follows luma, and what departs from its tone was added in colour
        # (ink, a stamp): the colour rules read that departure
        prob, gray, threshold = self.probabilities(image), luma(image), self.mask_threshold()
        # asked once strokes are found (the detector remembers the photo's faces for a second reading)
        faces = functools.partial(self._face_landmarks, image)
        defects = find_defects(prob, gray, threshold, image, frame, faces, tone)
        default = self._default_threshold()
        if threshold < default:
            # a lower threshold joins fainter pixels to the defects, and scene lines with them: a crack
            # joined to one is judged with it and may be left whole as scene content (the scratched boy at
            # 0.3: 1.3 % found, too little for auto, against 2.9 % at the calibrated 0.61).  A more
            # sensitive reading keeps what the calibrated one finds; its figures are the stronger one's
            calibrated = find_defects(prob, gray, default, image, frame, faces, tone)
            stronger = calibrated if calibrated.evidence > defects.evidence else defects
            defects = dataclasses.replace(stronger, mask=defects.mask | calibrated.mask,
                                          candidates=defects.candidates | calibrated.candidates)
        if self.options.mask_dilation:
            defects = dataclasses.replace(defects, mask=dilate(defects.mask, self.options.mask_dilation))
        return defects

    def with_dust(self, image: np.ndarray, defects: Defects | None, path: str,
                  tone: Tone | None | object = UNFITTED) -> tuple[Defects | None, str]:
        """``--dust``, ``--dark-dust``: the defects to repair and the path, with the fine dust the
        detector misses (:mod:`oldphoto.stages.dust`; the dark specks outside the faces) added; a photo
        that was to be left as it is (``path`` quality) has its dust repaired alone.  ``tone`` as for
        :meth:`detect`.  On a print lying on a plain surround (``Defects.print_box``) the dust is looked
        for on the print, as if it had been cropped: the surround is not repaired; with ``--scratches
        off`` (no ``defects``) the print is looked for here."""
        if defects is None:
            found = print_on_surround(luma(image))
            print_box = None if found is None else found.box
        else:
            print_box = defects.print_box
        box = (slice(None), slice(None)) if print_box is None else print_box
        colour = image[box]
        if tone is UNFITTED or (tone is not None and print_box is not None):  # (on a surround, the print's)
            tone = fit_tone(colour)
        gray = luma(colour)
        dust = np.zeros(image.shape[:2], bool)
        count = 0
        if self.options.dust:
            dust[box], count = find_dust(gray, colour, tone=tone)
        if self.options.dark_dust:
            dark, dark_count = find_dust(gray, colour, dark=True, leave=self._face_area(colour), tone=tone)
            dust[box] |= dark
            count += dark_count
        repaired = defects is not None and path != "quality"
        if not count:
            return defects, path
        if self.options.mask_dilation:  # grown as the predicted mask is (detect), within the print
            dust[box] = dilate(dust[box], self.options.mask_dilation)
        if repaired:
            return dataclasses.replace(defects, mask=defects.mask | dust, dust=count), path
        alone = Defects(dust, print_box=print_box) if defects is None else defects
        return (dataclasses.replace(alone, mask=dust, dust=count, dust_only=True),
                self._repair_path(image.shape[:2]))

    def _faces_on(self, image: np.ndarray) -> list[FaceInfo] | None:
        """The faces on ``image`` (found once per photo: the detector remembers the last one), None
        without a face detector."""
        detector = self.face_detector()
        return None if detector is None else detector(detector_pixels(image))

    def _face_landmarks(self, image: np.ndarray) -> list[np.ndarray]:
        """The 68 landmarks of each face on ``image``, under which strokes are clothing
        (:data:`oldphoto.stages.defects.CLOTHING_DEPTH`); none without a face detector."""
        return [face.landmarks68 for face in self._faces_on(image) or []]

    def _face_area(self, image: np.ndarray) -> np.ndarray | None:
        """Where the faces of ``image`` lie, for ``--dark-dust`` to leave their moles and freckles: each
        face's box grown by ``FACE_AREA_MARGIN`` of its side (dlib's box runs from the brows to the chin:
        the forehead, the ears and the neck are outside it).  None, with a notice, without a detector."""
        faces = self._faces_on(image)
        if faces is None:
            notice = ("--dark-dust: faces are not looked for (dlib-bin / face-recognition-models are not "
                      "installed), so a mole or a freckle can be taken for dust")
            if notice not in self.notices:
                self.notices.append(notice)
                log.warning(notice)
            return None
        area = np.zeros(image.shape[:2], bool)
        for face in faces:
            x0, y0, x1, y1 = face.box
            grow = round(FACE_AREA_MARGIN * max(x1 - x0, y1 - y0))
            area[max(0, y0 - grow):max(0, y1 + grow), max(0, x0 - grow):max(0, x1 + grow)] = True
        return area

    def restore(self, image: np.ndarray, mask: np.ndarray | None = None) -> Result:
        """Restore one photo.  ``mask`` (optional, the photo's size, white/True = defect) replaces the
        predicted defect mask (unless ``--scratches off``)."""
        image = _check_image(image)
        timings: dict[str, float] = {}
        shape = image.shape[:2]
        out, used_mask, path, defects, tone = self.mode.stage1(image, mask, timings)
        stage1 = out

        faces: list[FaceInfo] = []
        if self.faces_enabled:
            t = time.perf_counter()
            out, faces = self.face_stage()(out, tone, original=image)
            timings["faces"] = time.perf_counter() - t
        if out.shape[:2] != shape:
            # compat mode worked at the official ×4/×16 size (kept in Result.stage1); the result has the
            # input's size like every Result, so files can be written over the original's geometry
            out = _resize_image(out, shape)
            scale = np.array([shape[1] / stage1.shape[1], shape[0] / stage1.shape[0]])
            for f in faces:
                f.landmarks = f.landmarks * scale
                f.landmarks68 = f.landmarks68 * scale
                x0, y0, x1, y1 = f.box
                sx, sy = scale
                f.box = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
        stretch = None  # Result.unfade_gain
        if self.options.unfade != "off":
            t = time.perf_counter()
            # each picture stretched by its own levels, its frame and surround left as scanned: read with
            # them, each channel's white point came from a different thing (an instant photo's white
            # frame turned yellow or green under `colour`, blue marker ink on it black)
            stretch = 1.0
            if np.shares_memory(out, stage1):  # (Result.stage1, before faces and fading, stays so)
                out = out.copy()
            for box in pictures(luma(image)):
                out[box], gain = unfaded(out[box], self.options.unfade, toned=tone is not None)
                stretch = max(stretch, gain)
            timings["unfade"] = time.perf_counter() - t
        if self.options.upscale > 1:
            t = time.perf_counter()
            stage = self.upscale_stage()
            if self.on_progress is not None:
                stage.progress = functools.partial(self.on_progress, "enlarging")
            out = stage(out)
            timings["upscale"] = time.perf_counter() - t
        return Result(image=np.ascontiguousarray(out, dtype=np.float32), mask=used_mask, faces=faces,
                      timings=timings, models=self.model_info(), path=path, stage1=stage1, defects=defects,
                      fidelity=self.mode.fidelity(), unfade_gain=stretch)

    def restore_stage(self, path: str, shape: tuple[int, int] | None = None) -> RestoreStage:
        """The restoration stage of ``path`` as the modes run it (tile for a photo of ``shape``)."""
        return RestoreStage(self._run_module, tile=self._tile(path, shape),
                            global_norm=self.options.tile_norm == "global", device=self.device)


def _resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return np.clip(cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _card_field(card: Any, name: str) -> str:
    value = card.get(name) if isinstance(card, dict) else getattr(card, name, None)
    return str(value or "")


def _check_image(image: np.ndarray) -> np.ndarray:
    """Validate and normalise the API input: float RGB ``H×W×3`` in [0,1] (gray ``H×W`` is accepted)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:  # gray with its channel axis (what cv2 and some loaders give)
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        alpha = " (with alpha: restore image[..., :3] and put the alpha back)" if (
            a.ndim == 3 and a.shape[2] in (2, 4)) else ""
        raise ValueError(f"expected an RGB image H×W×3 (or gray H×W), got shape {a.shape}{alpha}")
    if not np.issubdtype(a.dtype, np.floating):
        # the divisor is the dtype's own: "divide by 255" followed for a 16-bit image gave values up to
        # 257, clipped below to a white photo without a word
        scale = (f"divide by {np.iinfo(a.dtype).max}" if np.issubdtype(a.dtype, np.unsignedinteger)
                 else "convert them to float")
        raise ValueError(f"expected float pixels in [0,1], got dtype {a.dtype} ({scale})")
    if too_small(a.shape[1], a.shape[0]):
        raise ValueError(f"image of {a.shape[1]}×{a.shape[0]} pixels is too small to restore "
                         f"(min {MIN_SIDE}×{MIN_SIDE})")
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or infinite values")
    top = float(a.max())
    if top > 2.0:  # an overshoot of a little is clipped below; 0-255 or 0-65535 floats are a mistake
        scale = 255 if top <= 255 else 65535
        raise ValueError(f"expected float pixels in [0,1], got values up to {top:g} "
                         f"(8-bit or 16-bit values as floats? divide by {scale})")
    low = float(a.min())
    if low < -0.5:  # pixels in [-1, 1] (the networks' own convention): clipped, the dark half went black
        raise ValueError(f"expected float pixels in [0,1], got values down to {low:g} "
                         "(pixels in [-1,1]? use (x + 1) / 2)")
    # C order: the stages sum in memory order, so a Fortran-ordered or transposed array would give other
    # pixels (by 1e-5) than the same photo in C order
    return np.ascontiguousarray(np.clip(a.astype(np.float32, copy=False), 0.0, 1.0))


__all__ += ["PATH_ROLES", "PATH_MULTIPLE"]
