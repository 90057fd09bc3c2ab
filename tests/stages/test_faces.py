"""Face stage on scikit-image's astronaut and matplotlib's grace_hopper (real dlib detection)."""

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image
from skimage import data

from oldphoto.stages.faces import (
    FaceDetector,
    FaceStage,
    apply_affine,
    detector_pixels,
    face_mask,
    match_quantiles,
    similarity_transform,
    template_points,
)
from oldphoto.stages.tone import fit_tone, luma

pytest.importorskip("dlib", reason="dlib not installed: pip install 'oldphoto[faces]' (as .ci/run does)")


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def astronaut():
    return data.astronaut().astype(np.float32) / 255


def grace_hopper():
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).astype(np.float32) / 255


PORTRAITS = {"astronaut": astronaut, "grace_hopper": grace_hopper}


def test_template_matches_the_official_numbers():
    assert np.allclose(template_points(256), [(89.0, 108.5), (167.0, 108.5), (128.0, 147.5),
                                              (104.6, 195.86), (151.4, 195.86)])
    assert np.allclose(template_points(512)[0], (178, 217))


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.random((5, 2)) * 100
    angle, scale, t = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_transform(src, src @ rot.T + t)
    assert np.allclose(m[:, :2], rot) and np.allclose(m[:, 2], t)


@pytest.mark.parametrize("name", list(PORTRAITS))
def test_one_face_found_with_landmarks_inside_the_box(detector, name):
    img = PORTRAITS[name]()
    faces = FaceStage(lambda x: x, detector=detector).detect(img)
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.box
    assert f.score > 0.5 and f.landmarks.shape == (5, 2) and f.landmarks68.shape == (68, 2)
    assert (f.landmarks[:, 0] > x0 - 5).all() and (f.landmarks[:, 0] < x1 + 5).all()
    assert (f.landmarks[:, 1] > y0 - 5).all() and (f.landmarks[:, 1] < y1 + 5).all()
    assert f.landmarks[0, 0] < f.landmarks[1, 0]  # left eye left of right eye (image coordinates)


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize("name", list(PORTRAITS))
def test_alignment_puts_eyes_on_the_template(detector, name, size):
    img = PORTRAITS[name]()
    stage = FaceStage(lambda x: x, size=size, detector=detector)
    face = stage.detect(img)[0]
    aligned = apply_affine(stage.transform(face), face.landmarks)
    target = template_points(size)
    eye_error = np.linalg.norm(aligned[:2] - target[:2], axis=1).max()
    assert eye_error < 0.05 * size
    # and a crop really contains the face: re-detecting on the aligned crop finds one
    from oldphoto.stages.faces import align_face

    crop = align_face(img, stage.transform(face), size)
    assert crop.shape == (size, size, 3) and len(detector(np.round(crop * 255).astype(np.uint8))) == 1


@pytest.mark.parametrize("name", list(PORTRAITS))
def test_paste_back_touches_only_the_face(detector, name):
    img = PORTRAITS[name]()
    red = lambda batch: np.broadcast_to(np.array([1.0, 0.0, 0.0], np.float32), batch.shape).copy()  # noqa: E731
    stage = FaceStage(red, detector=detector)
    out, faces = stage(img)
    changed = np.abs(out - img).max(axis=2) > 1e-6
    x0, y0, x1, y1 = faces[0].box
    w = x1 - x0
    ys, xs = np.nonzero(changed)
    # everything changed lies near the detected face box
    assert xs.min() > x0 - 0.35 * w and xs.max() < x1 + 0.35 * w
    assert ys.min() > y0 - 0.6 * w and ys.max() < y1 + 0.35 * w
    # the face centre is (nearly) fully replaced, the crop square's corners are untouched: no visible square
    cx, cy = faces[0].landmarks[2]
    assert np.abs(out[int(cy), int(cx)] - img[int(cy), int(cx)]).max() > 0.0
    m = stage.transform(faces[0])
    import cv2

    corners = apply_affine(cv2.invertAffineTransform(m), [(3, 3), (252, 3), (3, 252), (252, 252)])
    for x, y in corners:
        if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:
            assert not changed[int(y), int(x)]
    # feathered: the transition from face to background spans several pixels
    row = np.abs(out[int(cy)] - img[int(cy)]).max(axis=1)
    ramp = ((row > 0.02) & (row < 0.98 * row.max())).sum()
    assert ramp >= 4


@pytest.mark.parametrize("name", list(PORTRAITS))
def test_identity_enhancer_leaves_the_photo_nearly_unchanged(detector, name):
    img = PORTRAITS[name]()
    out, _ = FaceStage(lambda x: x, detector=detector)(img)
    assert np.abs(out - img).mean() < 0.002


def test_gray_photo_stays_gray(detector):
    g = luma(astronaut())
    gray = np.repeat(g[..., None], 3, axis=2)
    colourful = lambda batch: np.clip(batch * [1.2, 0.8, 0.5], 0, 1).astype(np.float32)  # noqa: E731
    out, faces = FaceStage(colourful, detector=detector)(gray, fit_tone(gray))
    assert len(faces) == 1 and np.abs(out - gray).max() > 0.01
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_a_gray_photos_colour_marks_stay_on_its_faces(detector):
    """Blue ink across a face in a gray photo stays blue when the face is enhanced; the rest is gray."""
    gray = np.repeat(luma(astronaut())[..., None], 3, axis=2)
    ink = np.zeros(gray.shape[:2], bool)
    ink[120:124, 150:320] = True  # across the face, below the eyes
    gray[ink] = (0.16, 0.16, 0.47)
    sharpen = lambda batch: np.clip(batch * 1.1 - 0.05, 0, 1).astype(np.float32)  # noqa: E731
    out, faces = FaceStage(sharpen, detector=detector)(gray, fit_tone(gray))
    assert len(faces) == 1
    spread = out.max(axis=2) - out.min(axis=2)
    rim = np.zeros_like(ink)
    rim[117:127, 147:323] = True  # the ink and what the crop's resampling blends it into
    assert spread[ink].min() > 0.2 and spread[~rim].max() == 0.0
    assert np.abs(out - gray).max() > 0.01


def test_sepia_photo_keeps_sepia_faces(detector):
    g = luma(grace_hopper())
    sepia = np.clip(np.stack([g * 1.07 + 0.03, g * 0.95 + 0.01, g * 0.78], axis=2), 0, 1).astype(np.float32)
    tone = fit_tone(sepia)
    blue = lambda batch: np.clip(batch * [0.6, 0.9, 1.3], 0, 1).astype(np.float32)  # noqa: E731
    out, faces = FaceStage(blue, detector=detector)(sepia, tone)
    changed = np.abs(out - sepia).max(axis=2) > 1e-4
    assert changed.sum() > 1000
    retoned = tone.apply(luma(out))
    diff = np.abs(out - retoned)[changed]
    assert diff.mean() < 0.003 and diff.max() < 0.04  # the face is in the photo's own tone (blend: ~exact)


def test_faces_go_through_the_generator_in_batches(detector):
    a = astronaut()
    b = np.asarray(Image.fromarray(np.round(grace_hopper() * 255).astype(np.uint8)).resize((437, 512)))
    both = np.concatenate([a, b.astype(np.float32) / 255], axis=1)
    calls = []

    def enhancer(batch):
        calls.append(len(batch))
        return batch

    _, faces = FaceStage(enhancer, detector=detector, batch_size=1)(both)
    assert len(faces) == 2 and calls == [1, 1]
    calls.clear()
    FaceStage(enhancer, detector=detector, batch_size=4)(both)
    assert calls == [2]


def test_face_mask_is_face_shaped_and_feathered():
    lm = np.zeros((68, 2))
    t = np.linspace(np.pi * 0.1, np.pi * 0.9, 17)  # a jaw arc below the eyes
    lm[0:17] = np.stack([128 - 70 * np.cos(t), 120 + 80 * np.sin(t)], 1)
    lm[17:27] = np.stack([np.linspace(70, 186, 10), np.full(10, 95.0)], 1)
    lm[8] = (128, 200)
    mask = face_mask(lm, 256)
    assert mask[150, 128] > 0.99 and mask[5, 5] == 0 and mask[250, 250] == 0
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 500  # a soft edge, not a hard cut


def test_quantile_matching_maps_distributions():
    rng = np.random.default_rng(0)
    src = rng.random(5000).astype(np.float32)
    ref = (rng.random(5000) ** 2).astype(np.float32)
    out = match_quantiles(src, ref)
    assert abs(np.median(out) - np.median(ref)) < 0.02
    assert np.all(np.diff(out[np.argsort(src)]) >= -1e-6)  # monotone


# ---------------------------------------------------------------------------------------------------------
# finding faces in group photos

def test_detection_scale_follows_the_smallest_face_a_photo_holds():
    from oldphoto.stages.faces import HOG_MIN_FACE, MAX_DETECT_PIXELS, MIN_FACE_PX, detection_scale

    assert detection_scale((881, 1280)) == pytest.approx(HOG_MIN_FACE / MIN_FACE_PX)  # 1/40 of 881 < 28 px
    assert detection_scale((1200, 1600)) == pytest.approx(HOG_MIN_FACE / 30.0)  # 1/40 of the short side
    assert detection_scale((6000, 8000)) == 1.0  # faces that small need no enlarging
    big = detection_scale((2500, 2500), min_face=10)  # capped by the pixel budget
    assert 2500 * 2500 * big ** 2 == pytest.approx(MAX_DETECT_PIXELS)


def test_merge_keeps_the_clearer_of_overlapping_faces():
    from oldphoto.stages.faces import FaceInfo, merge_faces

    def face(x, score):
        return FaceInfo((x, 10, x + 40, 50), np.zeros((5, 2)), score)

    a = [face(0, 0.5), face(100, 1.0)]
    b = [face(4, 0.9), face(200, 0.4)]  # the first overlaps a[0] and scores higher
    merged = merge_faces(a, b)
    assert [(f.box[0], f.score) for f in merged] == [(4, 0.9), (100, 1.0), (200, 0.4)]


def test_align_face_antialiases_when_shrinking():
    from oldphoto.stages.faces import align_face

    rng = np.random.default_rng(0)
    img = rng.random((800, 800, 3)).astype(np.float32)  # white noise: pure aliasing when subsampled
    m = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])
    smooth = align_face(img, m, 128)
    aliased = align_face(img, m, 128, antialias=False)
    assert smooth.shape == aliased.shape == (128, 128, 3)
    assert smooth.std() < 0.5 * aliased.std()
    assert abs(smooth.mean() - 0.5) < 0.01  # same content, averaged
    # enlarging is unchanged by the option
    up = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert np.array_equal(align_face(img, up, 64), align_face(img, up, 64, antialias=False))


@pytest.mark.slow  # ~20-60 s on a shared CPU: HOG on the photo enlarged 2.6x, CNN checks
def test_all_29_faces_of_the_solvay_photo_are_found():
    from pathlib import Path

    from oldphoto.stages.faces import box_iou

    path = Path(__file__).resolve().parents[2] / "examples" / "solvay_1927.jpg"
    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB"))
    faces = FaceDetector()(img)
    assert len(faces) == 29
    for i, a in enumerate(faces):
        assert all(box_iou(a.box, b.box) < 0.3 for b in faces[i + 1:])
        w = a.box[2] - a.box[0]
        assert 25 <= w <= 60  # every face of this photo is 30-45 px wide: no false positive


def test_paste_back_of_a_shrunk_face_keeps_the_detail_the_crop_could_not_hold():
    from oldphoto.stages.faces import align_face, paste_back

    rng = np.random.default_rng(1)
    img = (0.3 + 0.4 * rng.random((400, 400, 3))).astype(np.float32)  # detail at every pixel
    m = np.array([[0.5, 0.0, 36.0], [0.0, 0.5, 36.0]])  # a 400-px face into a 256 crop: shrunk 2x
    crop = align_face(img, m, 256)
    mask = np.zeros((256, 256), np.float32)
    mask[64:192, 64:192] = 1.0
    brighter = crop + 0.1  # the model's change: brighter, nothing else
    kept = paste_back(img.copy(), brighter, mask, m, crop=crop)
    centre = (slice(150, 250), slice(150, 250))  # well inside the mask
    assert np.abs(kept[centre] - (img[centre] + 0.1)).max() < 1e-4  # the photo's own pixels, brighter
    blurred = paste_back(img.copy(), brighter, mask, m)  # the crop itself: its resolution, half the photo's
    assert np.abs(blurred[centre] - (img[centre] + 0.1)).mean() > 0.05
    assert np.array_equal(kept[:20], img[:20])  # outside the mask: untouched either way


def test_a_large_face_comes_back_with_its_own_pixels_when_the_model_changes_nothing(detector):
    img = grace_hopper()  # a 208-px face: the 256 crop (face about 130 px wide in it) shrinks it
    out, faces = FaceStage(lambda x: x, detector=detector)(img)
    assert faces and np.abs(out - img).max() < 1e-3  # was up to 0.24 when the crop itself was pasted


def test_the_shirt_fronts_of_the_solvay_photo_are_clothing_not_scratches():
    """The bundled detector flags the white shirt fronts between lapels and ties as thin bright strokes;
    under the faces dlib finds they are left as they are (repaired, they were filled from the dark suits)."""
    from pathlib import Path

    import cv2

    from oldphoto import RestoreOptions, Restorer
    from oldphoto.io import read_photo
    from oldphoto.stages.defects import CLOTHING_MIN_SHARE, clothing_zone
    from oldphoto.stages.faces import detector_pixels

    image = read_photo(Path(__file__).resolve().parents[2] / "examples" / "solvay_1927.jpg").pixels
    restorer = Restorer(RestoreOptions(faces=False, scratches="on"))
    found = restorer.detect(image)
    restorer.face_detector = lambda: None  # as without dlib: no face, no clothing
    blind = restorer.detect(image)
    assert not (found.mask & ~blind.mask).any()  # only left out
    left = blind.mask & ~found.mask
    pieces = cv2.connectedComponents(left.astype(np.uint8))[0] - 1
    assert pieces >= 5 and found.evidence < blind.evidence
    faces = FaceDetector()(detector_pixels(image))
    zone = clothing_zone([f.landmarks68 for f in faces], image.shape[:2])
    assert zone[left].mean() >= CLOTHING_MIN_SHARE  # (each piece's fringe is left with it)


def test_a_photo_is_searched_for_faces_once(monkeypatch):
    """The clothing rule, --dark-dust and the face stage ask for the same photo's faces: one search."""
    detector = FaceDetector()
    searches = []
    find = detector._find
    monkeypatch.setattr(detector, "_find", lambda image: searches.append(image.shape) or find(image))
    pixels = detector_pixels(astronaut())
    first = detector(pixels)
    first[0].enhanced = True  # the face stage marks its faces: the remembered ones stay as found
    again = detector(pixels.copy())
    assert len(searches) == 1 and len(again) == 1 and not again[0].enhanced
    assert np.array_equal(again[0].landmarks68, first[0].landmarks68)
    detector(pixels[:, ::-1])  # other pixels: searched again
    assert len(searches) == 2
