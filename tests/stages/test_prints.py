"""Where the picture lies on a scan (oldphoto.stages.prints): a print on a plain surround, several
prints on a page, the picture within a print's plain frame."""

import cv2
import numpy as np
import pytest


def _print_scan(surround: float, top: int = 40, left: int = 50, size: tuple[int, int] = (120, 90),
                scan: tuple[int, int] = (180, 170), angle: float = 0.0, seed: int = 3) -> np.ndarray:
    """A print (mid-gray scene with some texture, size h×w) laid on a plain surround at (top, left) of a
    scan, turned by ``angle`` degrees; the surround has a little grain, as an album page does."""
    rng = np.random.default_rng(seed)
    h, w = size
    scene = np.clip(0.45 + 0.15 * np.sin(np.arange(w) / 9.0)[None] + rng.normal(0, 0.03, (h, w)), 0, 1)
    out = surround + rng.normal(0, 0.01, scan)
    placed = np.zeros(scan, np.float32)
    placed[top:top + h, left:left + w] = 1.0
    where = np.zeros(scan, np.float32)
    where[top:top + h, left:left + w] = scene
    if angle:
        turn = cv2.getRotationMatrix2D((left + w / 2, top + h / 2), angle, 1.0)
        placed = cv2.warpAffine(placed, turn, scan[::-1])
        where = cv2.warpAffine(where.astype(np.float32), turn, scan[::-1])
    return np.clip(placed * where + (1 - placed) * out, 0, 1).astype(np.float32)


@pytest.mark.parametrize("surround", [0.97, 0.1, 0.85])  # a white border, a dark album page, a scanner bed
def test_a_print_on_a_plain_surround_is_found(surround):
    from oldphoto.stages.prints import print_on_surround

    assert print_on_surround(_print_scan(surround)) == ((slice(40, 160), slice(50, 140)), None)
    (rows, cols), frame = print_on_surround(_print_scan(surround, angle=2.0))  # askew: its bounding box
    assert abs(rows.start - 40) <= 5 and abs(rows.stop - 160) <= 5
    assert abs(cols.start - 50) <= 5 and abs(cols.stop - 140) <= 5
    # its edge, in the box: centre, width, height (between the outermost pixels' centres), tilt
    cx, cy, width, height, tilt = frame
    assert abs(cx - (95 - cols.start)) < 1 and abs(cy - (100 - rows.start)) < 1
    assert abs(width - 89) < 2 and abs(height - 119) < 2 and abs(abs(tilt) - 2) < 0.3


@pytest.mark.parametrize("surround", [0.97, 0.1, 0.85])  # a white border, a dark album page, a scanner bed
def test_a_print_pushed_into_a_corner_or_against_a_side_is_found(surround):
    """A print touching the scan's frame on one side, or on two that meet in a corner, was never found
    (the whole scan judged); its surround is read from the plain sides, and its box reaches the frame."""
    from oldphoto.stages.prints import print_on_surround

    corner = _print_scan(surround)[40:, 50:]  # pushed into the top-left corner
    assert print_on_surround(corner) == ((slice(0, 120), slice(0, 90)), None)
    right = _print_scan(surround)[:, :140]  # against the right side
    assert print_on_surround(right) == ((slice(40, 160), slice(50, 140)), None)
    bottom_right = _print_scan(surround)[:160, :140]
    assert print_on_surround(bottom_right) == ((slice(40, 160), slice(50, 140)), None)


@pytest.mark.parametrize("width", [5, 12])
@pytest.mark.parametrize("corner", [False, True])
def test_the_beds_shadow_along_a_print_is_not_the_prints(width, corner):
    """The lid's shadow below and right of a print on the scanner's bed, a ramp from 0.5 at the print's
    edge to the bed's 0.85, joined the print beyond the surround's tolerance and its box grew by it (the
    detector saw the shadow as the print's edge).  A print's own plain dark border is its own."""
    from oldphoto.stages.prints import print_on_surround

    scan = _print_scan(0.85)
    rows, cols = np.mgrid[:180, :170]
    # the scene varies down the print too (its columns, plain and darkening inward, would pass for it)
    scan[40:160, 50:140] += 0.1 * np.sin(np.arange(120) / 5.0)[:, None]
    right = np.clip(1 - (cols - 140) / width, 0, 1) * (cols >= 140) * (rows >= 40) * (rows < 160 + width)
    below = np.clip(1 - (rows - 160) / width, 0, 1) * (rows >= 160) * (cols >= 50) * (cols < 140 + width)
    scan = np.where((rows >= 40) & (rows < 160) & (cols >= 50) & (cols < 140), scan,
                    scan - 0.35 * np.maximum(right, below) ** 2).astype(np.float32)
    # (its two lines next to the print may stay: the 5-px median mixes the print into them)
    top, bottom, left, right = (0, 120, 0, 90) if corner else (40, 160, 50, 140)
    found = print_on_surround(scan[40:, 50:] if corner else scan)
    assert found is not None and found.frame is None
    rows, cols = found.box
    assert (rows.start, cols.start) == (top, left)
    assert 0 <= rows.stop - bottom <= 2 and 0 <= cols.stop - right <= 2, found.box
    bordered = _print_scan(0.85)
    # a dark border along its bottom, darkening outward
    bordered[150:160, 50:140] = 0.45 + np.linspace(0, 0.08, 10)[:, None]
    assert print_on_surround(bordered) == ((slice(40, 160), slice(50, 140)), None)


# a white border, a dark album page, a scanner bed
@pytest.mark.parametrize("surround", [0.97, 0.1, 0.85])
def test_a_print_askew_with_a_corner_off_the_scan_is_found(surround):
    """A print turned by 2 degrees, pushed up to the scan's left side so that a corner runs a pixel off
    it, met the frame (the surround in a wedge beside it along the rest of that side) and was not found;
    it is read by its rotated rectangle.  Cut along all its side, it is read by its box, as before."""
    from oldphoto.stages.prints import print_on_surround

    found = print_on_surround(_print_scan(surround, angle=2.0)[:, 48:])
    assert found is not None and found.frame is not None
    (rows, cols), (cx, cy, width, height, tilt) = found
    assert cols.start == 0 and abs(rows.start - 40) <= 5 and abs(cols.stop - 92) <= 5
    assert abs(width - 89) < 2 and abs(height - 119) < 2 and abs(abs(tilt) - 2) < 0.3
    cut = print_on_surround(_print_scan(surround, angle=2.0)[:, 52:])
    assert cut is not None and cut.box[1].start == 0 and cut.frame is None


@pytest.mark.parametrize("side", ["top", "right"])
def test_the_lids_edge_across_a_bed_scan_is_no_second_print(side):
    """The scanner lid's dark edge across the whole scan along one side (the bed scanned beyond the
    glass) was taken for a second thing on the page, larger than a caption: the scan was judged whole.
    A strip a tenth of the scan across is not the lid's edge, and still is."""
    from oldphoto.stages.prints import print_on_surround

    for depth, found in ((8, ((slice(40, 160), slice(50, 140)), None)), (18, None)):
        scan = _print_scan(0.85)
        if side == "top":
            scan[:depth] = 0.2
        else:
            scan[:, -depth:] = 0.2
        assert print_on_surround(scan) == found, depth


def test_a_print_under_16_px_a_side_is_not_taken_for_one():
    """The print is restored on its own: one a few px high on a small scan (16 px, under the pipeline's 8
    px minimum) failed to restore; the scan is judged whole, as a scan under 16 px is."""
    from oldphoto.stages.prints import print_on_surround

    rng = np.random.default_rng(0)
    for top, left in ((5, 3), (5, 0), (0, 0)):  # on the surround, against the left side, in a corner
        scan = np.full((16, 40), 0.95, np.float32)
        scan[top:top + 6, left:36] = rng.random((6, 36 - left)) * 0.4
        assert print_on_surround(scan) is None
    # 16 px is enough
    scan = np.full((40, 60), 0.95, np.float32)
    scan[12:28, 5:55] = rng.random((16, 50)) * 0.4
    assert print_on_surround(scan) == ((slice(12, 28), slice(5, 55)), None)


def test_a_photo_with_a_plain_band_along_its_sides_is_no_print_at_the_edge():
    """A plain sky along the top (a seascape) leaves the scene on the three other sides, and black bars
    above and below (a letterboxed still) leave it on two opposite sides: no print pushed into a corner."""
    from oldphoto.stages.prints import print_on_surround

    scene = _print_scan(0.9)[40:160, 50:140]
    sky = np.vstack([np.full((60, 90), 0.85, np.float32), scene])
    assert print_on_surround(sky) is None
    bars = np.vstack([np.full((30, 90), 0.05, np.float32), scene, np.full((30, 90), 0.05, np.float32)])
    assert print_on_surround(bars) is None
    # and a plain wall along the right side too: the sky and the wall leave the scene in a corner, but
    # the scene's own tone runs into them (not a print's straight edge) and it fills no rectangle
    wall = np.hstack([sky, np.full((180, 60), 0.85, np.float32)])
    wall[60:120, 40:90] = 0.86 + 0.02 * np.sin(np.arange(50) / 3.0)[None]
    assert print_on_surround(wall) is None


def test_a_photo_without_a_plain_surround_is_its_own_print():
    """The whole photo is judged when there is no surround: a scene (one that reaches the frame), a plain
    sky or backdrop that meets the frame on some sides only, a thing that is no rectangle on a plain
    background, a print taking most of the scan (too little surround to matter) or a small part of it."""
    from oldphoto.stages.prints import print_on_surround

    scene = _print_scan(0.9)[40:160, 50:140]
    assert print_on_surround(scene) is None
    sky = _print_scan(0.95, top=60, left=0, size=(120, 170))  # a plain sky above the scene
    assert print_on_surround(sky) is None
    disk = np.full((180, 170), 0.95, np.float32)
    cv2.circle(disk, (85, 90), 70, 0.3, -1)
    assert print_on_surround(disk) is None
    assert print_on_surround(_print_scan(0.1, top=4, left=4, size=(172, 162))) is None  # 91 % of the scan
    assert print_on_surround(_print_scan(0.1, top=60, left=60, size=(70, 60))) is None  # 14 %


@pytest.mark.parametrize("angle", [0.0, 2.0])
def test_a_print_whose_dark_parts_run_into_a_dark_page_is_found(angle):
    """A dark sweater across the bottom of a print, 0.035 lighter than a black album page, runs into the
    page within the surround's tolerance: what was left of the print (its top half, 18 % of the scan) was
    no print, and the scan was judged whole.  The page is plainer than that all around, and read as
    plainly as it is the sweater is the print's."""
    from oldphoto.stages.prints import print_on_surround

    page = 0.13
    scan = _print_scan(page)
    rng = np.random.default_rng(5)
    scan[100:160, 50:140] = page + 0.035 + rng.normal(0, 0.01, (60, 90))  # the sweater, to the print's edges
    if angle:
        turn = cv2.getRotationMatrix2D((95.0, 100.0), angle, 1.0)
        where = np.pad(np.ones((120, 90), np.float32), ((40, 20), (50, 30)))
        placed = cv2.warpAffine(where, turn, (170, 180))
        scan = placed * cv2.warpAffine(scan, turn, (170, 180)) + (1 - placed) * _print_scan(page, size=(0, 0))
    found = print_on_surround(scan.astype(np.float32))
    assert found is not None
    (rows, cols), frame = found
    assert abs(rows.start - 40) <= 3 and abs(rows.stop - 160) <= 3
    assert abs(cols.start - 50) <= 3 and abs(cols.stop - 140) <= 3
    assert (frame is None) == (angle == 0.0)


def test_a_dark_photo_edge_to_edge_is_not_a_print_on_a_page():
    """Dark photos whose frame is plain and dark all around, as a black album page is, are no prints on a
    page: a portrait on a black backdrop (the sitter reaches the bottom), a lit window and its glow in a
    night scene (no rectangle), and the scratched girl herself (her dark sweater and curtain at the frame)."""
    from pathlib import Path

    from oldphoto.io import read_photo
    from oldphoto.stages.prints import print_on_surround
    from oldphoto.stages.tone import luma

    rng = np.random.default_rng(6)
    portrait = (0.1 + rng.normal(0, 0.01, (180, 170))).astype(np.float32)
    cv2.ellipse(portrait, (85, 70), (28, 36), 0, 0, 360, 0.6, -1)  # the face
    cv2.fillPoly(portrait, [np.array([[40, 180], [60, 110], [110, 110], [130, 180]])], 0.125)  # a dark coat
    assert print_on_surround(portrait) is None
    night = (0.1 + rng.normal(0, 0.01, (180, 170))).astype(np.float32)
    cv2.circle(night, (85, 90), 60, 0.14, -1)  # the window's glow, a little lighter than the night
    night[60:120, 60:110] = 0.8
    assert print_on_surround(night) is None
    girl = Path(__file__).resolve().parents[2] / "examples" / "real_old" / "scratched_girl_cigarette.png"
    assert print_on_surround(luma(read_photo(girl).pixels)) is None


def test_two_prints_on_one_page_are_found_each_and_not_as_one_print():
    """A page holding two prints side by side (or a stereo card): judging the larger one alone left the
    other unrepaired even with --scratches on; each is found (prints_on_surround), to be restored on its
    own; a piece of a print cut off by its own areas of the page's tone (a light wall on a light bed) is
    still that print's."""
    from oldphoto.stages.prints import print_on_surround, prints_on_surround

    page = _print_scan(0.97, top=15, left=10, size=(130, 80), scan=(160, 200))  # a third of the page
    page[15:145, 110:190] = _print_scan(0.97, top=0, left=0, size=(130, 80), scan=(130, 80), seed=4)
    assert print_on_surround(page[:, :100]) is not None  # either print alone is found
    assert print_on_surround(page[:, 100:]) is not None
    assert print_on_surround(page) is None
    assert prints_on_surround(page) == [(slice(15, 145), slice(10, 90)), (slice(15, 145), slice(110, 190))]
    assert prints_on_surround(page[:, :100]) is None  # one print: print_on_surround's
    touching = page.copy()
    touching[15:145, 90:110] = page[15:145, 20:40]  # the two prints joined into one
    assert prints_on_surround(touching) is None
    askew = page.copy()  # one of them lying 4 degrees askew: judged with the scan, as before
    askew[:, 100:] = _print_scan(0.97, top=15, left=10, size=(130, 80), scan=(160, 100), angle=4.0, seed=4)
    assert prints_on_surround(askew) is None
    assert prints_on_surround(np.random.default_rng(0).random((160, 200)).astype(np.float32)) is None
    one = _print_scan(0.97, top=40, left=50, size=(120, 90))
    one[45:60, 55:75] = 0.97  # a patch of the page's tone inside the print ...
    one[48:57, 58:72] = 0.3  # ... around a part of the print it cuts off
    assert print_on_surround(one) == ((slice(40, 160), slice(50, 140)), None)


def test_the_pictures_are_the_prints_and_the_pictures_within_their_frames():
    from oldphoto.stages.prints import pictures

    page = _print_scan(0.97, top=15, left=10, size=(130, 80), scan=(160, 200))
    page[15:145, 110:190] = _print_scan(0.97, top=0, left=0, size=(130, 80), scan=(130, 80), seed=4)
    assert pictures(page) == [(slice(15, 145), slice(10, 90)), (slice(15, 145), slice(110, 190))]
    framed = _print_scan(0.2, top=30, left=30, size=(140, 110), scan=(200, 170))  # a dark page
    framed[30:170, 30:140] = 0.95  # a white-framed print on it ...
    framed[40:140, 40:130] = _print_scan(0.95, top=0, left=0, size=(100, 90), scan=(100, 90), seed=5)
    assert pictures(framed) == [(slice(40, 140), slice(40, 130))]  # ... its picture within its frame
    photo = np.random.default_rng(0).random((50, 60)).astype(np.float32)
    assert pictures(photo) == [(slice(0, 50), slice(0, 60))]
