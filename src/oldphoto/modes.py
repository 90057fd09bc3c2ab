"""The two ways a :class:`~oldphoto.pipeline.Restorer` runs stage 1 (defects and global restoration).

* :class:`DefaultMode`: exact size, tiles from the memory budget, the detector at full resolution with
  shape rules, ``--fidelity`` away from the defects, defects repaired locally, levels fitted, the photo's
  own tone and colours.
* :class:`OfficialMode` (``--compat official``): the official stage 1, whole photo through one path at
  the official ×4/×16 sizes (docs/restore.md, "How the default mode differs from
  `--compat official`").

What differs between them beyond the flow itself is said once, by the class attributes of :class:`Mode`,
so that the Restorer asks its mode instead of branching on the option.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from oldphoto.masks import check_marked_share, dilate, dilate_official, user_mask
from oldphoto.stages import compat as compat_rules
from oldphoto.stages.colour import gray_colour, photo_colour
from oldphoto.stages.defects import (
    DEFAULT_MIN_AREA,
    Defects,
    merged_prints,
    official_mask,
)
from oldphoto.stages.fidelity import blend, denoised_photo
from oldphoto.stages.prints import print_on_surround, prints_on_surround
from oldphoto.stages.repair import GROW, repair
from oldphoto.stages.tone import Tone, fit_tone, luma

if TYPE_CHECKING:
    from oldphoto.pipeline import Restorer

# what stage 1 hands on: restored photo, the mask it repaired (None: nothing), path, defects, tone
Stage1 = tuple[np.ndarray, "np.ndarray | None", str, "Defects | None", "Tone | None"]


class Mode:
    """A Restorer's stage 1, and the rules that go with it."""

    official = False  # the official stage 1 (compat mode), faces included
    whole_images = False  # True: never tile (the official code runs whole photos)
    calibrated_threshold = True  # the detector card's threshold; False: the official 0.4
    min_defect_area = 0.0  # --scratches auto's area rule when the user gives none
    shape_rules = True  # --scratches auto also asks the defects' shapes (Defects.worth_repairing)
    hr_by_size = True  # the HR path above --hr-above megapixels, not only with --hr
    on_repairs_every_photo = False  # --scratches on sends a photo without defects through the scratch path

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer

    def stage1(self, image: np.ndarray, mask: np.ndarray | None, timings: dict[str, float]) -> Stage1:
        raise NotImplementedError

    def fidelity(self) -> float | None:
        """The fidelity recorded with a result (None: the mode has none)."""
        return None


class DefaultMode(Mode):
    """A fidelity blend of the quality path and the denoised photo, defects repaired locally by the
    scratch (or HR) path, then the photo's own tone or colours."""

    def stage1(self, image: np.ndarray, mask: np.ndarray | None, timings: dict[str, float]) -> Stage1:
        prints = prints_on_surround(luma(image))
        if prints is not None:
            marks = None if mask is None else user_mask(mask, image.shape[:2])
            # a user's marks on the surround are repaired as given, on the whole scan
            if marks is None or self.restorer.options.scratches == "off" \
                    or not (marks & ~_within_any(image.shape[:2], prints)).any():
                return self._each_print(image, marks, prints, timings)
        return self._one_print(image, mask, timings)

    def _each_print(self, image: np.ndarray, marks: np.ndarray | None, prints: list[tuple[slice, slice]],
                    timings: dict[str, float]) -> Stage1:
        """Several prints on a plain surround (``prints.PRINTS_MIN_SHARE``): each restored as if it had
        been scanned alone (with its part of a user's ``marks``), the surround left as scanned."""
        out = image.copy()
        used = None
        paths, parts = [], []
        for k, box in enumerate(prints, 1):
            own: dict[str, float] = {}
            restored, repaired, path, defects, _ = self._one_print(
                image[box], None if marks is None else marks[box], own,
                f"print {k} of the {len(prints)} on the scan (rows {box[0].start}-{box[0].stop - 1}, "
                f"columns {box[1].start}-{box[1].stop - 1})")
            for stage, seconds in own.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            out[box] = restored
            if repaired is not None:
                used = np.zeros(image.shape[:2], bool) if used is None else used
                used[box] = repaired
            paths.append(path)
            parts.append((box, defects))
        path = next((p for p in paths if p != "quality"), "quality")
        # the faces' and unfade's tone is the prints', not the scan's with its surround (as for one print,
        # fitted on its box): read with a coloured page, two gray prints were 'toned' and their faces
        # took the page's colour at its lightness (up to 34 levels on a green page)
        tone = _prints_tone(image, prints) if self.restorer.options.keep_tone else None
        return out, used, path, merged_prints(parts, image.shape[:2], [p != "quality" for p in paths]), tone

    def _one_print(self, image: np.ndarray, mask: np.ndarray | None, timings: dict[str, float],
                   what: str = "the photo") -> Stage1:
        """``what``: the part of the scan ``image`` is, named when a user's mask is refused."""
        r = self.restorer
        o = r.options
        if o.scratches == "off":  # a user's mask is ignored (the dust's specks are repaired alone), and
            mask = None  # is no mask drawn at the photo's size for the HR path to grow below
        detecting = o.scratches != "off" and mask is None
        dusting = (o.dust or o.dark_dust) and mask is None
        # the tone is fitted once: kept, and asked by the detector and the dust finder (colour says
        # nothing more in a gray or toned photo)
        fitted = fit_tone(image) if o.keep_tone or detecting or dusting else None
        tone = fitted if o.keep_tone else None
        t = time.perf_counter()
        defects: Defects | None = None
        detected: Defects | None = None  # what the detector finds, also beside a user's mask
        if o.scratches != "off":
            detected = r.detect(image, fitted)
            if mask is not None:
                given = user_mask(mask, image.shape[:2])
                check_marked_share(given, what)
                defects = _as_given(given, detected)
            else:
                defects = detected
        path = r.choose_path(defects, image.shape[:2], user=mask is not None)
        # fine dust, asked for: repaired whatever was decided for the rest, but a user's mask (not ignored
        # by --scratches off) is repaired as given: dust it leaves out (a star unmarked on the web page)
        # stays out
        if dusting:
            defects, path = r.with_dust(image, defects, path, fitted)
        # a print on a plain surround is restored as if it had been cropped (Defects.print_box), and the
        # surround is left as it is: a fill at the print's edge reaches beyond its defects (GROW, FEATHER)
        # and smeared the print into a white border, and a plain border or page read as a noiseless part
        # of the photo had the print denoised less than its crop is
        print_box = None if defects is None else defects.print_box
        if defects is None:  # --scratches off: the detector has not looked for the print (with dust
            # the dust finder has, and found no dust: looked for again here, 1 s on a 28 MP scan)
            found = print_on_surround(luma(image))
            print_box = None if found is None else found.box
        box = (slice(None), slice(None)) if print_box is None else print_box
        if print_box is not None and o.keep_tone:  # the print's tone, not the scan's with its border
            tone = fit_tone(image[box])
        used_mask = None
        if path != "quality":
            used_mask = defects.mask
            if path == "hr":
                used_mask = np.zeros_like(defects.mask)
                used_mask[box] = _hr_grown(defects.mask[box], None if mask is None else detected.mask[box],
                                           r.detection_scale(image[box].shape[:2]) == 1)
        timings["defects"] = time.perf_counter() - t
        # the noise is read away from the detector's candidate regions (none with --scratches off)
        candidates = None if defects is None else defects.candidates
        if print_box is None:
            out = self.render(image, used_mask, path, tone, timings, candidates)
        else:
            out = image.copy()
            out[box] = self.render(image[box], None if used_mask is None else used_mask[box], path, tone,
                                   timings, None if candidates is None else candidates[box])
        return out, used_mask, path, defects, tone

    def render(self, image: np.ndarray, used_mask: np.ndarray | None, path: str, tone: Tone | None,
               timings: dict[str, float], candidates: np.ndarray | None = None) -> np.ndarray:
        """The photo restored once its defects (``used_mask``, repaired by ``path``) and its ``tone``
        are known: the base (:meth:`base`, its noise read away from the detector's ``candidates``), the
        defects repaired, the photo's tone or colours."""
        r = self.restorer
        o = r.options
        t = time.perf_counter()
        out = self.base(image, candidates)
        timings["restore"] = time.perf_counter() - t
        copied = None  # pixels filled with copied texture: their colour is that texture's
        if used_mask is not None and used_mask.any():
            t = time.perf_counter()
            models = r.path_models(path)
            stage = r.restore_stage(path)
            copied = np.zeros(used_mask.shape, bool)
            out = repair(out, image, used_mask,
                         lambda windows, masks: stage.many(windows, models, path, masks),
                         diffuse_depth=r.diffusion_depth(path), texture_depth=r.texture_depth(path),
                         copied=copied)
            timings["repair"] = time.perf_counter() - t
        if tone is None and o.colour != "photo":
            return out
        # the chroma around a defect is the defect's for a pixel or two (its fringe, a JPEG's chroma
        # blur), more on a photo scaled down to find its defects: filled in from beyond
        fill = None
        if used_mask is not None:
            fill = dilate(used_mask, round(GROW * r.detection_scale(image.shape[:2])))
            if copied is not None:
                fill &= ~copied
        if tone is not None and tone.gray:  # exactly gray, but for what the photo holds in colour
            return gray_colour(out, image, tone, fill, own=copied, denoise=o.denoise)
        # a toned photo keeps its own chroma (near its tone)
        return photo_colour(out, image, fill, tone, own=copied, denoise=o.denoise)

    def base(self, image: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        """The photo away from its defects: ``--fidelity`` blends the quality path's restoration with
        the photo itself, denoised unless ``--no-denoise`` (the networks are not run at fidelity 1, the
        denoiser not at 0), at the noise level read away from the detector's ``candidates``
        (:func:`oldphoto.stages.fidelity.noise_sigma`)."""
        r = self.restorer
        f = r.fidelity()
        network = None if f == 1.0 else r.restore_stage("quality", image.shape[:2])(
            image, r.path_models("quality"), "quality")
        photo = None if f == 0.0 else (denoised_photo(image, r.luma_denoiser(), candidates)
                                       if r.options.denoise else image)
        return blend(network, photo, f)

    def fidelity(self) -> float | None:
        return self.restorer.fidelity()


class OfficialMode(Mode):
    """The official stage 1: the whole photo through one path, at the official sizes, min–max stretched
    (``Result.stage1`` has the official size; the Restorer resizes the result back)."""

    official = True
    whole_images = True
    calibrated_threshold = False
    min_defect_area = DEFAULT_MIN_AREA
    shape_rules = False
    hr_by_size = False
    on_repairs_every_photo = True  # the official --with_scratch

    def stage1(self, image: np.ndarray, mask: np.ndarray | None, timings: dict[str, float]) -> Stage1:
        r = self.restorer
        shape = image.shape[:2]
        t = time.perf_counter()
        defects: Defects | None = None
        image16 = None
        if r.options.scratches != "off":
            image16 = compat_rules.scratch_input(image)
            if mask is not None:
                defects = Defects(user_mask(mask, shape))
                check_marked_share(defects.mask)
            else:
                detector = r.model("detector")
                defects = Defects(official_mask(lambda x: r.runner(detector, x), image16, r.mask_threshold()),
                                  judged=False)
        path = r.choose_path(defects, shape, user=mask is not None)
        timings["defects"] = time.perf_counter() - t

        t = time.perf_counter()
        used_mask = defects.mask if path != "quality" else None
        out = r.restore_stage(path).official(image, r.path_models(path), path, used_mask, image16)
        if used_mask is not None:
            if used_mask.shape != out.shape[:2]:
                used_mask = compat_rules.resize_mask(used_mask, out.shape[:2])
            if path == "hr":
                used_mask = dilate_official(used_mask)
            used_mask = compat_rules.resize_mask(used_mask, shape)
        timings["restore"] = time.perf_counter() - t
        return out, used_mask, path, defects, None


def _prints_tone(image: np.ndarray, prints: list[tuple[slice, slice]]) -> Tone | None:
    """The tone of the prints on a scan (``prints``: their boxes) together, their surround left out:
    each print sampled to a share of ``fit_tone``'s samples by its area (no full-size copy)."""
    total = sum((b[0].stop - b[0].start) * (b[1].stop - b[1].start) for b in prints)
    step = max(1, int(np.ceil(np.sqrt(total / 200_000))))
    return fit_tone(np.concatenate([image[b][::step, ::step].reshape(-1, 3) for b in prints]))


def _hr_grown(mask: np.ndarray, found: np.ndarray | None, found_here: bool) -> np.ndarray:
    """The mask the HR path repairs: ``mask`` grown as the official code grows it (3×3, three times;
    the mask saved is what was repaired), but only where it was drawn at the photo's own size.  A mask
    the detector found on a smaller view (``found_here`` False: the print's defects are found on the
    print, Restorer.detect) and enlarged is as wide as its defects already, and 3 px more of each crack
    were filled from afar (the fill drawn over detail beside a hairline).  A user's mask (``found``:
    what the detector finds beside it) is grown where it is not what a run without it repairs, so that
    the detector's mask given back (a --save-mask mask, the web page's marks) is repaired as on that
    run, not 3 px wider (the Solvay photo: 3,805 px, given back 12,777), while new marks are grown."""
    first = dilate_official(found) if found is not None and found_here else found
    if first is None:
        return dilate_official(mask) if found_here else mask
    return (mask & first) | dilate_official(mask & ~first)


def _as_given(given: np.ndarray, detected: Defects) -> Defects:
    """A user's mask (``given``), repaired as given, with what the detector knows beside its own mask,
    so that the detector's mask given back (a --save-mask mask, the web page's marks, which start from
    it) is restored as on the first run:

    * the print on a plain surround (Defects.print_box), if ``given`` marks nothing outside it: a fill
      at its edge smeared the print into a white border; marks on the surround are repaired as given;
    * the candidate regions, away from which the noise is read, with the marks: read over the whole
      photo, a crazed print's crack network passed for noise (the scratched girl crazed all over: 3.2
      levels instead of 2.4), and a re-run with one more speck marked denoised the whole print harder.
    """
    print_box = detected.print_box
    if print_box is not None and (given & ~_within(given.shape, print_box)).any():
        print_box = None
    return Defects(given, print_box=print_box, candidates=detected.candidates | given)


def _within(shape: tuple[int, int], box: tuple[slice, slice]) -> np.ndarray:
    """A bool mask of ``shape``, True within ``box``."""
    return _within_any(shape, [box])


def _within_any(shape: tuple[int, int], boxes: list[tuple[slice, slice]]) -> np.ndarray:
    """A bool mask of ``shape``, True within any of ``boxes``."""
    inside = np.zeros(shape, bool)
    for box in boxes:
        inside[box] = True
    return inside
