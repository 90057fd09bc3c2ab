"""Face enhancement: detect, align, enhance (batched), colour-match and paste back.

Detection uses dlib (HOG+SVM by default, the MMOD CNN detector as an option) and its 68-point landmark
model, the files of the ``face-recognition-models`` package.  Five points (eye centres, nose tip, mouth
corners) are aligned by a least-squares similarity transform to the official template at face scale 1.3
(as the official alignment stage does), the aligned crops go through the face generator in batches,
each result is colour-matched to the crop it came from and pasted back through a feathered mask.

Differences from the official stages 2–4 (``compat=False``):

* the paste-back mask follows the face (convex hull of the jaw line and the eyebrows raised onto the
  forehead), eroded and blurred, instead of the whole rotated square of the crop (no visible square);
* colours are matched on the face region only (the square crop also holds hair and background), per
  channel by quantiles; for a monochrome photo only the luma is matched and the face is re-toned from the
  photo's own tone curve, so gray stays exactly gray and sepia stays sepia;
* eye centres are kept in sub-pixel precision, crops near the border are filled by reflection instead of
  black, and faces are detected once (the official code detects twice).

With ``compat=True`` the official square mask (9×9 erosion ×3, 25×25 Gaussian), the 256-level per-channel
histogram matching on the whole crop, integer eye centres and black borders are used.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from oldphoto.options import FACE_DETECT_ON, FACE_INPUT
from oldphoto.stages.colour import colour_marks
from oldphoto.stages.tone import Tone, luma

log = logging.getLogger(__name__)

# Official 5-point template in a 512 frame (left eye, right eye, nose, mouth left, mouth right).
_TEMPLATE_512 = np.array([(196.0, 226.0), (316.0, 226.0), (256.0, 286.0), (220.0, 360.4), (292.0, 360.4)])
FACE_SCALE = 1.3


def template_points(size: int, scale: float = FACE_SCALE) -> np.ndarray:
    """Target positions of the 5 points in an aligned ``size×size`` crop: ``(std·scale + 1)/2·size``."""
    std = _TEMPLATE_512 / 256.0 - 1.0
    return (std * scale + 1.0) / 2.0 * size


def five_points(landmarks68: np.ndarray, integer_eyes: bool = False) -> np.ndarray:
    """Eye centres (mean of the eye corners 36/39 and 42/45), nose tip 30, mouth corners 48 and 54."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    left, right = lm[[36, 39]].mean(axis=0), lm[[42, 45]].mean(axis=0)
    if integer_eyes:  # the official code truncates the eye centres to integers
        left, right = np.trunc(left), np.trunc(right)
    return np.stack([left, right, lm[30], lm[48], lm[54]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src -> dst.

    Umeyama's closed form; returns the 2×3 matrix ``M`` with ``dst ≈ M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = (s0 ** 2).sum() / len(src)
    scale = (sv * d).sum() / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - scale * rot @ ms
    return m


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


@dataclass
class FaceInfo:
    """One face found in the photo (coordinates in input pixels)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the detector's box
    landmarks: np.ndarray  # 5×2: left eye, right eye, nose tip, mouth left, mouth right
    score: float
    landmarks68: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((68, 2)))
    enhanced: bool = False


def _model_file(name: str) -> Path:
    """A data file of the face-recognition-models package, located without importing it.

    Importing ``face_recognition_models`` uses ``pkg_resources``, which new setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FaceModelsMissing(
            "face detection needs the pip packages dlib-bin and face-recognition-models "
            "(pip install 'oldphoto[faces]'), or run with --no-faces")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise FaceModelsMissing(f"{path} is missing; reinstall face-recognition-models")
    return path


class FaceModelsMissing(RuntimeError):
    """dlib or the landmark model files are not installed."""


def face_detection_available() -> bool:
    return (importlib.util.find_spec("dlib") is not None
            and importlib.util.find_spec("face_recognition_models") is not None)


# dlib's HOG window finds faces whose box is about 72 px wide or more (80 px window); smaller faces need the
# photo enlarged by 72 / face width.
HOG_MIN_FACE = 72.0
# The smallest face a photo is expected to hold: 1/40 of its short side (a large group photo), but never
# below 28 px (smaller faces are too small to enhance: a 256² crop of them would be mostly invented).
MIN_FACE_FRACTION = 1.0 / 40.0
MIN_FACE_PX = 28.0
# Enlarging is capped at this many pixels (HOG time and memory grow with them: ~1 s per 3 MP here).
MAX_DETECT_PIXELS = 12e6
# HOG candidates scoring between VERIFY_SCORE and min_score are confirmed (or dropped) by the CNN detector
# on a small window around them: turned or shadowed faces of group photos score there, next to rare
# false positives.  The CNN on the whole photo would find them too, but costs minutes on a CPU.
VERIFY_SCORE = -0.5
VERIFY_CONFIDENCE = 0.3
MAX_VERIFY = 8  # at most this many CNN checks per photo (the best-scoring candidates; ~1 s each)


def detection_scale(shape: tuple[int, ...], min_face: float | None = None) -> float:
    """How much to enlarge a photo so that HOG finds the smallest face it can hold.

    ``min_face`` (px) defaults to ``max(28, short side / 40)``; the result is capped so that the enlarged
    photo stays under MAX_DETECT_PIXELS, and is never below 1 (HOG then runs at native size).
    """
    h, w = shape[:2]
    if min_face is None:
        min_face = max(MIN_FACE_PX, min(h, w) * MIN_FACE_FRACTION)
    scale = HOG_MIN_FACE / min_face
    scale = min(scale, float(np.sqrt(MAX_DETECT_PIXELS / max(1, h * w))))
    return max(1.0, scale)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def merge_faces(*groups: list[FaceInfo], iou: float = 0.3) -> list[FaceInfo]:
    """One list of faces from several detections of the same photo: overlapping boxes are one face, and
    the detection with the higher score (the clearer view) is kept.  Sorted left to right."""
    kept: list[FaceInfo] = []
    for face in sorted((f for g in groups for f in g), key=lambda f: -f.score):
        if all(box_iou(face.box, k.box) < iou for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: (f.box[0], f.box[1]))


def detector_pixels(image: np.ndarray) -> np.ndarray:
    """A float RGB photo in [0, 1] as the 8-bit pixels dlib's detector reads (rounded)."""
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)


class FaceDetector:
    """dlib face detector (``hog`` or ``cnn``) plus the 68-point landmark predictor.

    ``upsample``: None (default) enlarges the photo just enough for the smallest face it can hold
    (:func:`detection_scale`); an integer N doubles it N times as dlib does.  ``min_score`` is the HOG score
    above which a face is taken as is (real faces score above ~0.5, false positives near 0); with ``verify``
    the HOG candidates between -0.5 and ``min_score`` are kept when the CNN detector confirms them.
    """

    def __init__(self, kind: str = "hog", upsample: int | None = None, min_score: float = 0.3,
                 verify: bool = True) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise FaceModelsMissing("face detection needs the pip package dlib-bin (or --no-faces)") from exc
        if kind not in ("hog", "cnn"):
            raise ValueError(f"unknown face detector {kind!r}; choose hog or cnn")
        self.kind = kind
        self.upsample = upsample
        self.min_score = min_score
        self.verify = verify
        self._predictor = dlib.shape_predictor(str(_model_file("shape_predictor_68_face_landmarks.dat")))
        self._cnn = None
        self._last: tuple[tuple[int, ...], bytes, list[FaceInfo]] | None = None
        if kind == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = self._cnn_detector()

    def _cnn_detector(self):
        import dlib

        if self._cnn is None:
            self._cnn = dlib.cnn_face_detection_model_v1(str(_model_file("mmod_human_face_detector.dat")))
        return self._cnn

    def scale_for(self, image: np.ndarray) -> float:
        if self.upsample is not None:
            return float(2 ** self.upsample)
        if self.kind == "cnn":  # the CNN costs ~50× HOG: only the old rule (double photos below 1024 px)
            return 2.0 if min(image.shape[:2]) < 1024 else 1.0
        return detection_scale(image.shape)

    def _confirmed(self, image_u8: np.ndarray, box: tuple[float, float, float, float]) -> bool:
        """Does the CNN detector find a face at ``box`` in a small window around it?"""
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        # a window of 2 face sides, resampled so that the face is ~90 px (the CNN's window is 80 px); the
        # CNN costs ~50 µs per pixel here, so the window is kept small (~1 s)
        k = 90.0 / max(side, 1.0)
        win = int(round(2.0 * side * k))
        m = np.array([[k, 0, win / 2 - k * cx], [0, k, win / 2 - k * cy]])
        crop = cv2.warpAffine(image_u8, m, (win, win), flags=cv2.INTER_LINEAR if k > 1 else cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REFLECT_101)
        target = (round(win / 2 - 45), round(win / 2 - 45), round(win / 2 + 45), round(win / 2 + 45))
        for d in self._cnn_detector()(np.ascontiguousarray(crop), 0):
            r = d.rect
            if d.confidence >= VERIFY_CONFIDENCE and box_iou((r.left(), r.top(), r.right(), r.bottom()),
                                                             target) >= 0.3:
                return True
        return False

    def __call__(self, image_u8: np.ndarray) -> list[FaceInfo]:
        """The faces of ``image_u8``.  The last photo's faces are remembered: the clothing rule of the
        defect detector, ``--dark-dust`` and the face stage all look for faces on the same original, and
        each search costs a second or more (the Solvay photo's 29 faces: 1.0 s, and ~1 s per CNN check of
        a doubtful one); a copy is returned, as the face stage marks its faces."""
        image_u8 = np.ascontiguousarray(image_u8)
        digest = hashlib.blake2b(image_u8.data, digest_size=16).digest()
        if self._last is None or self._last[:2] != (image_u8.shape, digest):
            self._last = (image_u8.shape, digest, self._find(image_u8))
        return copy.deepcopy(self._last[2])

    def _find(self, image_u8: np.ndarray) -> list[FaceInfo]:
        scale = self.scale_for(image_u8)
        # enlarged here (bilinear) rather than by dlib's pyramid_up, so that any scale can be used; the
        # landmarks are fitted on the enlarged photo too (sub-pixel precision on small faces)
        big = image_u8 if scale == 1.0 else cv2.resize(image_u8, None, fx=scale, fy=scale,
                                                       interpolation=cv2.INTER_LINEAR)
        if self.kind == "hog":
            low = min(VERIFY_SCORE, self.min_score) if self.verify else self.min_score
            rects, scores, _ = self._detector.run(big, 0, low)
            found = list(zip(rects, scores, strict=True))
        else:
            found = [(d.rect, d.confidence) for d in self._detector(big, 0)]
        faces = []
        checks = 0
        for rect, score in sorted(found, key=lambda rs: -rs[1]):
            box = (rect.left() / scale, rect.top() / scale, rect.right() / scale, rect.bottom() / scale)
            if score < self.min_score:
                if self.kind != "hog" or not self.verify or checks >= MAX_VERIFY:
                    continue
                checks += 1
                if not self._confirmed(image_u8, box):
                    continue
            shape = self._predictor(big, rect)
            lm68 = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) / scale
            faces.append(FaceInfo(tuple(int(round(v)) for v in box), five_points(lm68), float(score), lm68))
        return faces


# ---------------------------------------------------------------------------------------------------------
# alignment and paste-back geometry

def crop_scale(m: np.ndarray) -> float:
    """How much the image->crop similarity ``m`` enlarges the face (below 1: the crop shrinks it)."""
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def align_face(image: np.ndarray, m: np.ndarray, size: int, reflect: bool = True,
               antialias: bool = True) -> np.ndarray:
    """The ``size×size`` crop for the image->crop transform ``m`` (bilinear).

    When ``m`` shrinks the face (a large face in a big scan, or a 1024² synthetic face into a 512 crop)
    bilinear sampling alone aliases (jagged hair, moiré); with ``antialias`` the crop's footprint is first
    area-resized to about the crop's scale, so training crops and inference crops are sampled alike.
    """
    border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_CONSTANT
    image = np.ascontiguousarray(image, dtype=np.float32)
    scale = crop_scale(m)
    if antialias and scale < 0.8:
        y0, x0, y1, x1 = _footprint(m, size, image.shape[:2], margin=int(np.ceil(2.0 / scale)) + 2)
        if y1 - y0 > 1 and x1 - x0 > 1:
            nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(image[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / (x1 - x0), nh / (y1 - y0)
            # small-image coordinates q = ((x - x0)·fx, (y - y0)·fy), so x = q/f + x0
            m = np.concatenate([m[:, :2] @ np.diag([1.0 / fx, 1.0 / fy]),
                                (m[:, :2] @ np.array([x0, y0], dtype=np.float64) + m[:, 2])[:, None]], axis=1)
            image = small if small.ndim == 3 or image.ndim == 2 else small[..., None]
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border,
                          borderValue=(0, 0, 0))


def face_mask(landmarks68_crop: np.ndarray, size: int) -> np.ndarray:
    """Feathered face-shaped mask ``size×size`` in [0,1] from the 68 landmarks in crop coordinates.

    Convex hull of the jaw line (0–16), the eyebrows (17–26) and the eyebrows raised onto the forehead by
    40 % of the brow–chin distance; eroded so the feather lies inside the face, then Gaussian-blurred.
    """
    lm = np.asarray(landmarks68_crop, dtype=np.float64)
    jaw, brows = lm[0:17], lm[17:27]
    up = brows.mean(axis=0) - lm[8]
    forehead = brows + 0.4 * up
    hull = cv2.convexHull(np.concatenate([jaw, brows, forehead]).astype(np.float32))
    mask = np.zeros((size, size), dtype=np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0, lineType=cv2.LINE_AA)
    k = max(3, size // 32) | 1
    mask = cv2.erode(mask, np.ones((k, k), np.uint8))
    sigma = size / 40.0
    return np.clip(cv2.GaussianBlur(mask, (0, 0), sigma), 0.0, 1.0)


def square_mask_official(valid: np.ndarray) -> np.ndarray:
    """The official blend mask: crop footprint ×255, erode 9×9 ×3, GaussianBlur 25×25 (σ from size), /255."""
    m = cv2.erode(valid.astype(np.float32) * 255.0, np.ones((9, 9), np.uint8), iterations=3)
    return cv2.GaussianBlur(m, (25, 25), 0) / 255.0


def _footprint(m: np.ndarray, size: int, shape: tuple[int, int],
               margin: int = 4) -> tuple[int, int, int, int]:
    """Bounding box (y0, x0, y1, x1), clipped to the image, of the crop square mapped back to the image."""
    inv = cv2.invertAffineTransform(m)
    corners = apply_affine(inv, np.array([(0, 0), (size, 0), (0, size), (size, size)], dtype=np.float64))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + margin
    h, w = shape
    return max(0, y0), max(0, x0), min(h, y1), min(w, x1)


def paste_back(image: np.ndarray, face: np.ndarray, mask: np.ndarray, m: np.ndarray,
               crop: np.ndarray | None = None) -> np.ndarray:
    """Blend ``face`` (crop space, ``S×S×3``) into ``image`` through ``mask`` (crop space ``S×S``).

    Both are warped back by the inverse of the image->crop transform ``m`` (bicubic for the face, bilinear
    for the mask), only inside the bounding box of the crop's footprint.  ``crop``: the crop of ``image``
    the face was made from; when given, what the crop was too small to hold is kept: the image's detail
    finer than the crop's pixels (the image minus the crop warped back) is added to the face.  ``image``
    is modified in place and returned.
    """
    size = face.shape[0]
    y0, x0, y1, x1 = _footprint(m, size, image.shape[:2])
    if y1 <= y0 or x1 <= x0:
        return image
    # the image->crop map for the sub-window: shift the window origin into the transform
    shift = m.copy()
    shift[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(np.ascontiguousarray(face, dtype=np.float32), shift, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_CUBIC | flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.float32), shift, (x1 - x0, y1 - y0),
                           flags=cv2.INTER_LINEAR | flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    region = image[y0:y1, x0:x1]
    if crop is not None:
        back = back + region - cv2.warpAffine(np.ascontiguousarray(crop, dtype=np.float32), shift,
                                              (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | flags,
                                              borderMode=cv2.BORDER_REPLICATE)
    image[y0:y1, x0:x1] = np.clip(back, 0.0, 1.0) * alpha + region * (1.0 - alpha)
    return image


# ---------------------------------------------------------------------------------------------------------
# colour matching

def match_quantiles(source: np.ndarray, reference: np.ndarray, source_weight: np.ndarray | None = None,
                    reference_weight: np.ndarray | None = None) -> np.ndarray:
    """Map ``source`` values so that their (weighted) distribution matches ``reference``'s (1-D quantiles)."""
    src = np.asarray(source, dtype=np.float64).ravel()
    ref = np.asarray(reference, dtype=np.float64).ravel()

    def cdf(values: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(values, kind="stable")
        w = np.ones_like(values) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
        w = w[order]
        total = w.sum()
        if total <= 0:
            w = np.ones_like(w)
            total = w.sum()
        c = (np.cumsum(w) - 0.5 * w) / total
        return values[order], c

    ref_v, ref_c = cdf(ref, reference_weight)
    src_v, src_c = cdf(src, source_weight)
    # each source value -> its quantile (by interpolation over the sorted values) -> reference value
    q = np.interp(src, src_v, src_c)
    return np.interp(q, ref_c, ref_v).reshape(np.shape(source)).astype(np.float32)


def match_histograms_official(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The official per-channel 256-bin matching: LUT(v) = smallest r with cdf_ref[r] ≥ cdf_src[v]."""
    src = np.clip(np.round(source * 255), 0, 255).astype(np.uint8)
    ref = np.clip(np.round(reference * 255), 0, 255).astype(np.uint8)
    out = np.empty_like(src)
    for c in range(3):
        cdf_s = np.cumsum(np.bincount(src[..., c].ravel(), minlength=256)) / src[..., c].size
        cdf_r = np.cumsum(np.bincount(ref[..., c].ravel(), minlength=256)) / ref[..., c].size
        lut = np.minimum(np.searchsorted(cdf_r, cdf_s - 1e-12, side="left"), 255).astype(np.uint8)
        out[..., c] = lut[src[..., c]]
    return out.astype(np.float32) / 255.0


def match_colours(face: np.ndarray, reference: np.ndarray, weight: np.ndarray,
                  tone: Tone | None) -> np.ndarray:
    """Colour-match an enhanced face to the crop it came from, over the face region ``weight``.

    Colour photo: per-channel quantile matching.  Monochrome photo (``tone``): match the luma only and
    re-tone, so the face has exactly the photo's tone, but for what the crop holds in colour (ink, a
    stamp, a tint: :func:`oldphoto.stages.colour.colour_marks`), which keeps its colour.
    """
    if tone is not None:
        y = match_quantiles(luma(face), luma(reference), weight, weight)
        out = tone.apply(y)
        marks = colour_marks(reference, tone)
        if marks is not None:
            out += marks[..., None] * (reference - tone.apply(luma(reference)))
        return np.clip(out, 0.0, 1.0, out=out)
    out = np.empty_like(face, dtype=np.float32)
    for c in range(3):
        out[..., c] = match_quantiles(face[..., c], reference[..., c], weight, weight)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# the stage

Enhancer = Callable[[np.ndarray], np.ndarray]  # N×S×S×3 [0,1] -> N×S×S×3 [0,1]


class FaceStage:
    """Finds faces in a restored photo and replaces them by enhanced ones.

    ``enhance`` runs the face generator on a batch of aligned crops (``N×S×S×3`` in [0,1]); the
    pipeline builds it from the loaded generator and the device/precision runner.

    ``crop_from``: the generator's input is the face cut from the restored photo (``restored``, the
    paper's order) or from the original (``original``): the face model is trained on faces degraded the
    way old photos are, which is what the original holds, while stage 1 may have smoothed small faces
    into something no training face looks like.  Either way the result takes the restored photo's tones
    and is pasted into it.
    """

    def __init__(self, enhance: Enhancer, size: int = 256, detector: FaceDetector | None = None,
                 batch_size: int = 4, compat: bool = False, detect_on: str = "original",
                 crop_from: str = "restored") -> None:
        if size not in (256, 512):
            raise ValueError(f"face size must be 256 or 512, got {size}")
        if detect_on not in FACE_DETECT_ON:
            raise ValueError(f"detect_on must be one of {', '.join(FACE_DETECT_ON)}, got {detect_on!r}")
        if crop_from not in FACE_INPUT:
            raise ValueError(f"crop_from must be one of {', '.join(FACE_INPUT)}, got {crop_from!r}")
        self.enhance = enhance
        self.size = size
        self.detector = detector or FaceDetector()
        self.batch_size = max(1, int(batch_size))
        self.compat = compat
        self.detect_on = detect_on
        self.crop_from = crop_from

    def detect(self, image: np.ndarray, original: np.ndarray | None = None) -> list[FaceInfo]:
        """Faces of the restored ``image``, found where they are most findable (``detect_on``).

        ``original`` (the input photo, same size) is where faces are usually clearest: stage 1 smooths
        small faces (on the Solvay photo HOG finds 29 of 29 faces in the original, 3 in the restored one).
        Compat mode detects on the restored image only, as the official code does.
        """
        def run(img: np.ndarray) -> list[FaceInfo]:
            return self.detector(detector_pixels(img))

        if self.compat or original is None or self.detect_on == "restored":
            faces = run(image)
        elif original.shape[:2] != image.shape[:2]:
            raise ValueError(f"original {original.shape[:2]} and restored {image.shape[:2]} differ in size")
        elif self.detect_on == "original":
            faces = run(original)
        else:
            faces = merge_faces(run(original), run(image))
        if self.compat:
            for f in faces:
                f.landmarks = five_points(f.landmarks68, integer_eyes=True)
        return faces

    def transform(self, face: FaceInfo) -> np.ndarray:
        """image -> aligned-crop similarity transform of one face."""
        return similarity_transform(face.landmarks, template_points(self.size))

    def __call__(self, image: np.ndarray, tone: Tone | None = None,
                 original: np.ndarray | None = None) -> tuple[np.ndarray, list[FaceInfo]]:
        faces = self.detect(image, original)
        if not faces:
            return image, faces
        transforms = [self.transform(f) for f in faces]

        def crops_of(img: np.ndarray) -> np.ndarray:
            return np.stack([align_face(img, m, self.size, reflect=not self.compat, antialias=not self.compat)
                             for m in transforms])

        # the colour reference is always the restored photo (the face must take its tones); the
        # generator's input is the original's face with ``crop_from="original"`` (see the class doc)
        crops = crops_of(image)
        use_original = self.crop_from == "original" and original is not None and not self.compat
        inputs = crops_of(original) if use_original else crops
        enhanced = np.concatenate([self.enhance(inputs[i:i + self.batch_size])
                                   for i in range(0, len(inputs), self.batch_size)])
        out = np.array(image, dtype=np.float32, copy=True)
        full = np.ones((self.size, self.size), dtype=np.float32)
        for face, m, crop, new in zip(faces, transforms, crops, enhanced, strict=True):
            if self.compat:
                # the official mask is the crop's footprint inside the photo (black border excluded)
                valid = align_face(np.ones(image.shape[:2] + (1,), np.float32), m, self.size, reflect=False,
                                   antialias=False)
                valid = (valid.reshape(self.size, self.size) > 0.5).astype(np.float32)
                new = match_histograms_official(new, crop)
                mask = square_mask_official(valid)
            else:
                mask = face_mask(apply_affine(m, face.landmarks68), self.size)
                new = match_colours(new, crop, mask if mask.sum() > 0 else full, tone)
            # a face larger in the photo than in the crop (a portrait, a big scan) would come back at the
            # crop's resolution, blurred (Kodak I04's 300-px face: NIQE 5.2 -> 10.5); it keeps its own
            # finer detail and takes the model's change (compat: the official paste, as it was)
            shrunk = not self.compat and crop_scale(m) < 1.0
            paste_back(out, new, mask, m, crop=crop if shrunk else None)
            face.enhanced = True
        return out, faces
