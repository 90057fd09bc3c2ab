"""The options of ``oldphoto restore`` that decide pixels, devices and weights (:class:`RestoreOptions`).

Kept apart from :mod:`oldphoto.pipeline` and free of torch (and of every other heavy import) so that
``oldphoto --help``, argument checking and the batch/cluster/web front ends can build their parsers and
validate options without loading PyTorch: starting the command line costs tens of milliseconds instead of
seconds.  The stages import the mode names from here, so each list of choices exists once.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RestoreOptions", "DEFAULT_FIDELITY", "SCRATCH_MODES", "COLOUR_MODES", "UNFADE_MODES",
           "PRECISION_NAMES", "parse_memory"]

SCRATCH_MODES = ("auto", "on", "off")
COLOUR_MODES = ("photo", "network")
UNFADE_MODES = ("off", "contrast", "colour")  # oldphoto.stages.unfade
FACE_DETECT_ON = ("original", "restored", "both")  # where faces are looked for
FACE_INPUT = ("restored", "original")  # which photo's face the face model enhances
PRECISION_NAMES = ("fp32", "bf16", "fp16")  # oldphoto.stages.runtime.PRECISIONS maps them to dtypes
UPSCALE_CHOICES = (1, 2, 4)  # 1: the photo's own size; 2, 4: oldphoto.stages.upscale
# options that count pixels or things, and options that are numbers (checked for their type first: from
# Python or a JSON file, upscale=2.0 or mask_dilation=1.5 passed the range checks and failed in a stage
# with a TypeError after the detector had run, fidelity="0.5" with a TypeError about "<=")
WHOLE_NUMBER_OPTIONS = ("mask_dilation", "detect_size", "face_size", "face_batch", "face_upsample", "tile",
                        "upscale")
NUMBER_OPTIONS = ("mask_threshold", "scratch_min_area", "fidelity", "diffusion_depth", "texture_depth",
                  "hr_above", "face_threshold")
# switches, True or False (faces also None: on when face weights are installed); from a JSON file or a
# form, hr="False" was a non-empty string, so true: the photo took the high-resolution path
SWITCH_OPTIONS = ("dust", "dark_dust", "denoise", "remove_grain", "hr", "faces", "keep_tone")
MAX_FACE_UPSAMPLE = 3  # --face-upsample: the photo doubled at most 3 times (8×) to find its faces

# --fidelity for quality-path weights whose card recommends none (e.g. imported official weights): an even
# blend; the bundled weights' card carries the value measured for them (docs/restore.md)
DEFAULT_FIDELITY = 0.5


@dataclass
class RestoreOptions:
    """Options of ``oldphoto restore`` that decide pixels, devices and weights (see docs/restore.md)."""

    scratches: str = "auto"
    mask_threshold: float | None = None  # None: the detector card's calibrated threshold, else 0.4
    mask_dilation: int | None = None
    detect_size: int | None = None  # None: at most DETECT_SHORT_SIDE (stages.defects); 0: full resolution
    scratch_min_area: float | None = None  # None: no area rule (default mode); 2e-4 in compat mode
    dust: bool = False  # also repair the fine dust the detector misses (oldphoto.stages.dust)
    dark_dust: bool = False  # and the dark specks: a slide's or transparency's dust, outside faces
    fidelity: float | None = None  # None: the quality-path card's measured value, else DEFAULT_FIDELITY
    denoise: bool = True  # away from the defects, the photo's noise is removed (luma and chroma)
    remove_grain: bool = False  # denoise with the learned denoiser, which removes film grain too
    diffusion_depth: float | None = None  # None: the repairing mapping's card, else 0 (networks fill all)
    texture_depth: float | None = None  # None: the repairing mapping's card, else 0 (no texture fill)
    hr: bool = False
    hr_above: float = 4.0
    faces: bool | None = None
    face_detector: str = "hog"
    face_size: int | None = None
    face_batch: int = 4
    face_threshold: float = 0.3
    face_upsample: int | None = None
    face_detect_on: str = "original"
    face_input: str = "restored"
    keep_tone: bool = True
    colour: str = "photo"
    unfade: str = "off"
    compat: str = "none"
    device: str = "auto"
    precision: str = "fp32"
    weights: Path | None = None
    max_memory: str = "2G"
    tile: int | None = None
    tile_norm: str = "global"
    upscale: int = 1

    def validate(self) -> None:
        for names, kind, what in ((WHOLE_NUMBER_OPTIONS, numbers.Integral, "a whole number"),
                                  (NUMBER_OPTIONS, numbers.Real, "a number")):
            for name in names:
                value = getattr(self, name)
                unset = value is None and getattr(RestoreOptions, name) is None  # (None: the default)
                if not isinstance(value, kind) and not unset:
                    raise ValueError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")
        for name in SWITCH_OPTIONS:
            value = getattr(self, name)
            if not _is_switch(value) and not (value is None and name == "faces"):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if self.scratches not in SCRATCH_MODES:
            raise ValueError(f"--scratches must be one of {', '.join(SCRATCH_MODES)}, got {self.scratches!r}")
        if self.colour not in COLOUR_MODES:
            raise ValueError(f"--colour must be one of {', '.join(COLOUR_MODES)}, got {self.colour!r}")
        for name in ("dust", "dark_dust"):
            if getattr(self, name) and self.compat == "official":
                raise ValueError(f"--{name.replace('_', '-')} is not part of the official stage 1: it cannot "
                                 "go with --compat official")
        if self.unfade not in UNFADE_MODES:
            raise ValueError(f"--unfade must be one of {', '.join(UNFADE_MODES)}, got {self.unfade!r}")
        if self.compat not in ("none", "official"):
            raise ValueError(f"--compat must be none or official, got {self.compat!r}")
        if self.precision not in PRECISION_NAMES:
            raise ValueError(f"--precision must be one of {', '.join(PRECISION_NAMES)}, "
                             f"got {self.precision!r}")
        if self.fidelity is not None and not 0.0 <= self.fidelity <= 1.0:
            raise ValueError(f"--fidelity must be in [0, 1], got {self.fidelity}")
        if self.remove_grain and not self.denoise:
            raise ValueError("--remove-grain removes grain with the noise: it cannot go with --no-denoise")
        # (written ``not x >= 0``: nan compares false both ways and would pass ``x < 0`` unnoticed)
        if self.diffusion_depth is not None and not self.diffusion_depth >= 0:
            raise ValueError(f"--diffusion-depth must be >= 0, got {self.diffusion_depth}")
        if self.texture_depth is not None and not self.texture_depth >= 0:
            raise ValueError(f"--texture-depth must be >= 0, got {self.texture_depth}")
        if not self.hr_above >= 0:
            raise ValueError(f"--hr-above must be >= 0 megapixels, got {self.hr_above}")
        if math.isnan(self.face_threshold):
            raise ValueError(f"--face-threshold must be a number, got {self.face_threshold}")
        if self.scratch_min_area is not None and not 0.0 <= self.scratch_min_area <= 1.0:
            raise ValueError(f"--scratch-min-area must be a fraction in [0, 1], got {self.scratch_min_area}")
        if self.mask_threshold is not None and not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"--mask-threshold must be between 0 and 1, got {self.mask_threshold}")
        if self.mask_dilation is not None and self.mask_dilation < 0:
            raise ValueError(f"--mask-dilation must be >= 0, got {self.mask_dilation}")
        if self.compat == "official":
            # the official stage 1 detects at its own size, does not grow its mask and runs the whole photo
            # through one path: these would change nothing, without a word
            unused = [flag for flag, asked in (("--detect-size", self.detect_size is not None),
                                               ("--mask-dilation", bool(self.mask_dilation)),
                                               ("--diffusion-depth", bool(self.diffusion_depth)),
                                               ("--texture-depth", bool(self.texture_depth))) if asked]
            if unused:
                raise ValueError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not part of "
                                 "the official stage 1: cannot go with --compat official")
        if self.face_detector not in ("hog", "cnn"):
            raise ValueError(f"--face-detector must be hog or cnn, got {self.face_detector!r}")
        if self.face_size not in (None, 256, 512):
            raise ValueError(f"--face-size must be 256 or 512, got {self.face_size}")
        if self.face_upsample is not None and not 0 <= self.face_upsample <= MAX_FACE_UPSAMPLE:
            raise ValueError(f"--face-upsample must be 0 to {MAX_FACE_UPSAMPLE} (doublings of the photo), "
                             f"got {self.face_upsample}")
        if self.face_batch < 1:
            raise ValueError(f"--face-batch must be >= 1, got {self.face_batch}")
        if self.face_input not in FACE_INPUT:
            raise ValueError(f"--face-input must be one of {', '.join(FACE_INPUT)}, got {self.face_input!r}")
        if self.face_detect_on not in FACE_DETECT_ON:
            raise ValueError(f"--face-detect-on must be one of {', '.join(FACE_DETECT_ON)}, "
                             f"got {self.face_detect_on!r}")
        if self.tile is not None and self.tile < 64:
            raise ValueError(f"--tile must be at least 64 pixels, got {self.tile}")
        if self.detect_size is not None and self.detect_size != 0 and self.detect_size < 64:
            raise ValueError(f"--detect-size must be 0 (full resolution) or at least 64 pixels, "
                             f"got {self.detect_size}")
        if self.tile_norm not in ("global", "tile"):
            raise ValueError(f"--tile-norm must be global or tile, got {self.tile_norm!r}")
        if self.upscale not in UPSCALE_CHOICES:
            raise ValueError(f"--upscale must be one of {', '.join(map(str, UPSCALE_CHOICES))}, "
                             f"got {self.upscale}")
        try:
            if parse_memory(self.max_memory) is None:  # tiles, strips and batches are all sized from it
                raise ValueError("a budget is needed (e.g. '2G'); there is no unlimited setting")
        except ValueError as exc:
            raise ValueError(f"--max-memory: {exc}") from None

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add the pixel/device/weights options to ``parser`` (file options belong to the caller)."""
        d = RestoreOptions()
        g = parser.add_argument_group("defects")
        g.add_argument("--scratches", choices=SCRATCH_MODES, default=d.scratches,
                       help="inpaint scratches/dust. auto (default): only on clear evidence of damage, "
                            "a hole or scratches adding up to the photo's short side (with --compat "
                            "official: defects covering --scratch-min-area); on: whatever the detector "
                            "keeps, also on undamaged photos, where it can take letters, spectacle rims "
                            "or thin bright lines for scratches; off: never (--dust and --dark-dust aside)")
        g.add_argument("--mask-threshold", type=float, default=d.mask_threshold, metavar="P",
                       help="defect probability threshold (default: the threshold calibrated for the "
                            "installed detector, written in its card; 0.4, the official value, when it "
                            "has none or with --compat official)")
        g.add_argument("--mask-dilation", type=int, default=d.mask_dilation, metavar="PX",
                       help="grow predicted masks by a disk of PX pixels (default: 0; the HR path adds "
                            "the official 3×3×3 dilation to a mask drawn at the photo's own size, not to "
                            "one found on a smaller view nor to one given back; not with --compat official)")
        g.add_argument("--detect-size", type=int, default=d.detect_size, metavar="PX",
                       help="run the detector at this short side, at most the photo's own (default: the "
                            "photo's own, scaled down to 512 when larger, where the detector knows the "
                            "scratches' widths; 0: full resolution always; not with --compat official)")
        g.add_argument("--scratch-min-area", type=float, default=d.scratch_min_area, metavar="FRACTION",
                       help="--scratches auto: also require the detected defects to cover at least this "
                            "fraction of the photo (default: no area rule; 0.0002 with --compat official; "
                            "a user mask is repaired as given)")
        g.add_argument("--dust", action="store_true", default=d.dust,
                       help="also remove fine dust: small bright specks on flat areas, which the detector "
                            "misses (whatever --scratches decides for the rest; not with --compat "
                            "official, nor on a photo given a --mask-dir mask, repaired as given). Off by "
                            "default: it takes stars, city lights and glints on water for dust too")
        g.add_argument("--dark-dust", action="store_true", default=d.dark_dust,
                       help="also remove small dark specks on flat areas: the dust of a slide, a "
                            "transparency or a glass plate, which blocks the light, and dirt on a print "
                            "(with --dust: both kinds; not fibres or hairs; as --dust, not on a photo given "
                            "a --mask-dir mask). Faces are left (found with "
                            "dlib-bin, as for face enhancement): moles and freckles look the same. Off by "
                            "default: it takes dark dots of the scene too (knots, distant figures, the "
                            "tips of spires)")
        g.add_argument("--diffusion-depth", type=float, default=d.diffusion_depth, metavar="PX",
                       help="fill defects whose every pixel lies within PX pixels of an undamaged one "
                            "(hairlines, thin scratches, dust) by diffusion from their edges instead of "
                            "the networks (default: the value measured for the installed scratch weights, "
                            "written in their card; 0, the networks fill everything, when it has none; not "
                            "with --compat official)")
        g.add_argument("--texture-depth", type=float, default=d.texture_depth, metavar="PX",
                       help="fill the deeper defects whose every pixel lies within PX pixels of an "
                            "undamaged one (scratches and cracks on high-resolution scans) with patches "
                            "of the undamaged texture around them instead of the networks (default: the "
                            "value measured for the installed scratch weights, written in their card; 0, "
                            "none, when it has none; not with --compat official)")
        g = parser.add_argument_group("restoration")
        g.add_argument("--fidelity", type=float, default=d.fidelity, metavar="F",
                       help="away from the defects, 1 keeps the photo's own structure and detail (only "
                            "denoised), 0 takes the networks' restoration as is; values between blend them "
                            "(default: the value measured for the installed weights, written in their "
                            f"card; {DEFAULT_FIDELITY} when it has none; not with --compat official)")
        g.add_argument("--denoise", action=argparse.BooleanOptionalAction, default=d.denoise,
                       help="remove the photo's noise away from the defects, in its luma (non-local means "
                            "at the noise level it reads) and colours (default on). --no-denoise keeps "
                            "the photo's own pixels there: for a clean photo, whose fine texture the "
                            "noise estimate may take for noise (a small photo before --upscale); not with "
                            "--compat official, which denoises nothing")
        g.add_argument("--remove-grain", action="store_true", default=d.remove_grain,
                       help="denoise with the bundled learned denoiser instead: it also removes film "
                            "grain, JPEG blocks and some blur, for a smoother photo, and smooths skin "
                            "texture and softens fine hair with them (docs/restore.md, step 2). Off by "
                            "default: the default keeps the print's grain and detail. Not at --fidelity "
                            "0 or with --compat official, where the photo is not denoised")
        g.add_argument("--hr", action="store_true", default=d.hr,
                       help="high-resolution mode: multi-scale patch attention for defects, 512 faces")
        g.add_argument("--hr-above", type=float, default=d.hr_above, metavar="MPIX",
                       help="use patch attention for defects above this many megapixels (default 4)")
        g.add_argument("--keep-tone", action=argparse.BooleanOptionalAction, default=d.keep_tone,
                       help="keep black-and-white and toned (sepia) photos in their own tone (default on). "
                            "--no-keep-tone takes them for colour photos, which keep their own colours: "
                            "alone it changes next to nothing; it acts with --colour network below "
                            "--fidelity 1 (the networks' colours) and --unfade colour (the tone stretched "
                            "away as a cast)")
        g.add_argument("--colour", choices=COLOUR_MODES, default=d.colour,
                       help="colour photos: photo = restored luminance with the photo's own colours, "
                            "denoised and filled in under defects (default); network = the networks' "
                            "colours (see docs/restore.md)")
        g.add_argument("--unfade", choices=UNFADE_MODES, default=d.unfade,
                       help="undo fading: contrast = the photo's darkest and lightest tones become black and "
                            "white, the same stretch for every channel (colours and tone kept); colour = "
                            "each channel stretched on its own, which also removes the cast of unevenly "
                            "faded dyes (and of a sunset; gray and toned photos kept in their tone are "
                            "stretched as by contrast). Off by default: a dim or hazy scene looks faded too")
        g.add_argument("--compat", choices=("none", "official"), default=d.compat,
                       help="official = reproduce the official stage-1 output exactly (sizes rounded to "
                            "×4/×16, min–max stretched; the networks' restoration as is, not denoised, and "
                            "in the networks' colours: gray and toned photos are not kept in their tone); "
                            "see docs/restore.md")
        g.add_argument("--upscale", type=int, choices=UPSCALE_CHOICES, default=d.upscale,
                       help="enlarge the restored photo 2 or 4 times with the Real-ESRGAN x4plus network "
                            "(`oldphoto weights download realesrgan`; not part of the paper's method; slow "
                            "on a CPU: about 7 minutes per megapixel of the photo; for a clean photo add "
                            "--no-denoise). Default 1: the photo's own size")
        g = parser.add_argument_group("faces")
        g.add_argument("--faces", action=argparse.BooleanOptionalAction, default=d.faces,
                       help="enhance faces (default: on when face weights are installed)")
        g.add_argument("--face-detector", choices=("hog", "cnn"), default=d.face_detector,
                       help="dlib HOG (fast, frontal) or CNN (slower, finds more faces)")
        g.add_argument("--face-size", type=int, choices=(256, 512), default=d.face_size,
                       help="face generator resolution (default 256, 512 with --hr)")
        g.add_argument("--face-batch", type=int, default=d.face_batch, metavar="N",
                       help="faces per generator batch (default 4)")
        g.add_argument("--face-threshold", type=float, default=d.face_threshold, metavar="SCORE",
                       help="smallest detector score of a face (default 0.3)")
        g.add_argument("--face-upsample", type=int, default=d.face_upsample, metavar="N",
                       help="dlib upsampling steps to find small faces (default: enough for the smallest "
                            "face the photo can hold, 1/40 of its short side, at least 28 px; with the "
                            "CNN detector, 2× when the short side is under 1024 px)")
        g.add_argument("--face-detect-on", choices=FACE_DETECT_ON, default=d.face_detect_on,
                       help="find faces on the original photo (default: faces are clearest there), on the "
                            "restored one, or on both (merged)")
        g.add_argument("--face-input", choices=FACE_INPUT, default=d.face_input,
                       help="what the face model enhances: the face of the restored photo (default) or of "
                            "the original; the result takes the restored photo's tones either way")
        g = parser.add_argument_group("device and weights")
        g.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N | mps (default auto)")
        g.add_argument("--precision", choices=PRECISION_NAMES, default=d.precision,
                       help="fp32 (default), bf16 (CPU or CUDA), fp16 (CUDA or MPS)")
        g.add_argument("--weights", type=Path, default=d.weights, metavar="DIR",
                       help="weights folder (default: $OLDPHOTO_WEIGHTS or ~/.local/share/oldphoto/weights, "
                            "then the bundled weights)")
        g.add_argument("--max-memory", default=d.max_memory, metavar="SIZE",
                       help="working-memory budget that sets the tile size, e.g. 2G, 800M (default 2G)")
        g.add_argument("--tile", type=int, default=d.tile, metavar="PX",
                       help="force this tile side instead of deriving it from --max-memory")
        g.add_argument("--tile-norm", choices=("global", "tile"), default=d.tile_norm,
                       help="tiled photos: normalise features with whole-photo statistics (global, default; "
                            "one extra pass over the photo scaled down to one tile) or per tile (faster, "
                            "tiles may differ in tone)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RestoreOptions:
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        options = cls(**values)
        options.validate()
        return options


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def argument_problem(args: argparse.Namespace) -> str | None:
    """Why the restore options on a command line cannot be used, or None: checked before anything is
    loaded or read, so that a typo is a bad option (exit 2) rather than a failure after the models are
    loaded, or nothing at all when every photo is skipped."""
    try:
        options = RestoreOptions.from_args(args)
    except ValueError as exc:
        return str(exc)
    if not DEVICE_PATTERN.fullmatch(options.device):
        return f"--device must be auto, cpu, cuda, cuda:N or mps, got {options.device!r}"
    if options.weights is not None and not Path(options.weights).is_dir():
        return (f"--weights {options.weights} is not a folder (give the folder `oldphoto weights import "
                "--dest` wrote, or leave --weights out for the installed weights)")
    return unused_problem(options)


def unused_problem(options: RestoreOptions) -> str | None:
    """Why options given together would change nothing, or None: the photo came out pixel for pixel as
    without the option, exit 0.  Said on the command line only (not by ``validate``): the web page's form
    sends --fidelity, --remove-grain and --denoise with every photo, whatever the server's mode."""
    if options.compat == "official":
        # the official stage 1 runs the whole photo through the networks: no blend with the photo, no
        # denoising of it
        unused = [flag for flag, asked in (("--fidelity", options.fidelity is not None),
                                           ("--remove-grain", options.remove_grain),
                                           ("--no-denoise", not options.denoise)) if asked]
        if unused:
            return (f"{' and '.join(unused)} {'changes' if len(unused) == 1 else 'change'} nothing with "
                    "--compat official: the official stage 1 takes the networks' restoration as is, the "
                    "photo neither blended in nor denoised")
    if options.remove_grain and options.fidelity == 0:
        return ("--remove-grain changes nothing at --fidelity 0: it denoises the photo that --fidelity "
                "keeps, and at 0 none is kept (the networks' restoration as is)")
    return None


def _is_switch(value: object) -> bool:
    """True or False, also numpy's (not 1, 0 or "False")."""
    return isinstance(value, bool) or (getattr(getattr(value, "dtype", None), "kind", None) == "b"
                                       and getattr(value, "ndim", None) == 0)


def weights_problem(args: argparse.Namespace) -> str | None:
    """Why the weights the options ask for cannot be there, or None: ``--upscale 2`` or ``4`` without the
    upscaler installed, ``--faces`` without face weights, found before any photo is read and without
    importing torch (exit 2, said once).  Other roles are checked when the restorer is built (a broken
    card says what is wrong then)."""
    try:
        options = RestoreOptions.from_args(args)
    except ValueError as exc:
        return str(exc)
    from oldphoto.weights.locate import present

    if options.upscale > 1:
        from oldphoto.nets.descriptors import UPSCALE_ROLE
        from oldphoto.weights.locate import missing_upscaler

        if not present(UPSCALE_ROLE, options.weights):
            return missing_upscaler(options.weights)
    if options.faces:
        from oldphoto.nets.descriptors import FACE_ROLES

        wanted = [FACE_ROLES[options.face_size]] if options.face_size else list(FACE_ROLES.values())
        if not any(present(role, options.weights) for role in wanted):
            where = options.weights or "the user weights folder"
            return (f"--faces: no face weights ({' or '.join(wanted)}) in {where} or the bundled weights; "
                    "`oldphoto weights download` fetches the official ones and imports them (or, with the "
                    "file at hand, `oldphoto weights import face_checkpoints.zip`)")
    return None


def device_problem(args: argparse.Namespace) -> str | None:
    """Why ``--device`` and ``--precision`` cannot run on this machine (``--precision fp16`` on a CPU, a
    GPU that is not there), or None, found before any photo is read (exit 2, said once).  Torch is
    imported only when either is asked for."""
    options = RestoreOptions.from_args(args)  # (weights_problem has said what is wrong with them)
    if options.device == "auto" and options.precision == "fp32":
        return None
    from oldphoto.stages.runtime import precision_problem, resolve_device

    try:
        return precision_problem(options.precision, resolve_device(options.device))
    except ValueError as exc:  # (a device that is not there)
        return str(exc)


def parse_memory(text: str | int | float | None) -> int | None:
    """``"3G"``, ``"512M"``, ``"1.5GB"``, ``"2GiB"`` or a number of bytes -> bytes (None stays None)."""
    if text is None:
        return None
    factor = 1
    if isinstance(text, int | float):
        value = text
    else:
        s = text.strip().upper().removesuffix("IB").removesuffix("B")
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        if s and s[-1] in units:
            factor = units[s[-1]]
            s = s[:-1]
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"cannot read memory size {text!r} (use e.g. 3G, 512M or a byte count)"
                             ) from None
    if not 0 < value * factor < math.inf:  # (float() reads "nan" and "inf" too: no size)
        raise ValueError(f"memory size must be positive, got {text!r}")
    return int(value * factor)
