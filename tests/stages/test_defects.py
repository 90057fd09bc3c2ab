import cv2
import numpy as np
import pytest
import torch

from oldphoto.masks import dilate, user_mask
from oldphoto.stages.defects import DefectStage, needs_inpainting


def dark_line_detector(x: torch.Tensor) -> torch.Tensor:
    """A pointwise stand-in detector: dark pixels (gray < -0.5) are defects; checks the 16 multiple."""
    assert x.shape[-2] % 16 == 0 and x.shape[-1] % 16 == 0
    return (-0.5 - x) * 20.0


def photo_with_scratch(h=203, w=157):
    img = np.full((h, w, 3), 0.6, np.float32)
    img[h // 2, 5:w - 5] = 0.02  # a 1-px dark scratch
    return img


@pytest.mark.parametrize("tile", [48, 4096])
def test_full_resolution_mask_for_any_size_and_tiling(tile):
    img = photo_with_scratch()
    mask = DefectStage(dark_line_detector, tile=tile, overlap=16)(img)
    expected = np.zeros(img.shape[:2], bool)
    expected[101, 5:152] = True
    assert mask.shape == (203, 157) and np.array_equal(mask, expected)


def test_tiles_are_used_for_big_photos():
    shapes = []

    def det(x):
        shapes.append(tuple(x.shape[-2:]))
        return dark_line_detector(x)

    DefectStage(det, tile=64, overlap=16)(photo_with_scratch(200, 130))
    assert len(shapes) > 4 and all(max(s) <= 64 for s in shapes)


def test_threshold_and_dilation():
    img = photo_with_scratch()
    probs = DefectStage(dark_line_detector).probabilities(img)
    assert probs[101, 50] > 0.99 and probs[0, 0] < 0.01
    grown = DefectStage(dark_line_detector, dilation=2)(img)
    assert grown[99:104, 50].all() and not grown[98, 50] and not grown[104, 50]
    assert not DefectStage(dark_line_detector, threshold=0.999999)(img).any()


def test_short_side_option_runs_the_detector_smaller():
    shapes = []

    def det(x):
        shapes.append(tuple(x.shape[-2:]))
        return dark_line_detector(x)

    img = np.full((512, 384, 3), 0.6, np.float32)
    img[250:262, 20:300] = 0.0
    mask = DefectStage(det, short_side=192)(img)
    assert shapes == [(256, 192)] and mask.shape == (512, 384)
    assert mask[256, 100] and not mask[100, 100]


def test_user_masks_in_every_format():
    m = np.zeros((6, 5), bool)
    m[2, 1:4] = True
    for variant in (m, m.astype(np.uint8) * 255, m.astype(np.float32), m.astype(np.uint8),
                    np.repeat(m[..., None].astype(np.uint8) * 255, 3, axis=2),
                    np.concatenate([np.repeat(m[..., None] * 255, 3, 2), np.full((6, 5, 1), 255)], 2)):
        assert np.array_equal(user_mask(variant, (6, 5)), m)
    sixteen = m.astype(np.uint16) * 65535
    sixteen[0, 0] = 200  # faint on a 16-bit mask's scale: no defect (it was read on the 8-bit one)
    assert np.array_equal(user_mask(sixteen, (6, 5)), m)
    with pytest.raises(ValueError, match=r"mask\.png: mask is 4×6 pixels but the photo is 5×6"):
        user_mask(np.zeros((6, 4)), (6, 5), name="mask.png")
    with pytest.raises(ValueError, match=r"^mask is 4×6 pixels"):  # the API's array: no "mask: mask is"
        user_mask(np.zeros((6, 4)), (6, 5))
    nan = np.zeros((6, 5))
    nan[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # not silently "no defect there"
        user_mask(nan, (6, 5))


def test_auto_decision_and_dilate():
    m = np.zeros((100, 100), bool)
    assert not needs_inpainting(m, 1e-4)
    assert not needs_inpainting(None, 1e-4)
    m[50, 50] = True
    assert needs_inpainting(m, 1e-4) and not needs_inpainting(m, 1e-3)
    assert dilate(m, 1).sum() == 5 and dilate(m, 0).sum() == 1


def _prob_from(mask: np.ndarray, p: float = 0.95) -> np.ndarray:
    return np.where(mask, p, 0.0).astype(np.float32)


def test_a_bright_scratch_is_a_defect_and_one_side_of_an_edge_is_not():
    from oldphoto.stages.defects import find_defects

    gray = np.full((200, 200), 0.3, np.float32)
    gray[:, 120:] = 0.8  # a step edge in the scene
    gray[40, 10:110] = 0.95  # a thin bright scratch over the dark side
    flagged = np.zeros_like(gray, bool)
    flagged[40, 10:110] = True
    flagged[60:160, 120:122] = True  # the detector's typical mistake: the bright side of the edge
    d = find_defects(_prob_from(flagged), gray, 0.5)
    assert d.mask[40, 10:110].all() and not d.mask[:, 115:].any()
    assert (d.strokes, d.content) == (1, 1)
    assert d.stroke_length == pytest.approx(0.5, abs=0.02)  # 100 px of a 200-px photo
    assert not d.worth_repairing()  # one short stroke is no proof: letters and collars look like it


def test_a_bright_line_along_the_boundary_of_two_regions_is_an_outline_not_a_scratch():
    from oldphoto.stages.defects import OUTLINE_MAX_STEP, find_defects

    gray = np.full((200, 200), 0.25, np.float32)
    gray[:, 100:] = 0.6  # two regions of the scene (a badge on a jacket, a spoon on a saucer)
    gray[20:180, 99:101] = 0.95  # a bright rim between them: it stands out from both sides
    gray[150, 20:180] = 0.95  # a scratch crossing both regions, and the rim
    outline = np.zeros_like(gray, bool)
    outline[20:140, 99:101] = True
    scratch = np.zeros_like(gray, bool)
    scratch[150, 20:180] = True
    d = find_defects(_prob_from(outline | scratch), gray, 0.5)
    assert d.mask[150, 20:180].all() and not d.mask[20:140].any()
    assert (d.strokes, d.content) == (1, 1)
    # the same rim with alike sides is a scratch: the rule reads the sides, not the line
    flat = gray.copy()
    flat[:, 100:] = 0.25 + 0.9 * OUTLINE_MAX_STEP
    assert find_defects(_prob_from(outline), flat, 0.5).strokes == 1


def test_a_speck_drawn_out_along_an_outline_is_the_scene_and_dust_is_not():
    """The tip of the scratched boy's collar on his vest (29 px) and a fold of the scratched girl's bow
    (27 px) were flagged, small enough for specks, which were never judged by their sides: filled."""
    from oldphoto.stages.defects import find_defects

    gray = np.full((200, 200), 0.3, np.float32)
    gray[:, 100:] = 0.7  # two regions of the scene (a collar on a vest)
    gray[40:52, 99:101] = 0.95  # a short bright rim between them: 24 px, a speck's size
    gray[120:132, 40:42] = 0.95  # the same line on the flat: a fragment of a scratch
    gray[150:153, 150:153] = 0.95  # a round speck of dust on the bright region
    rim = np.zeros_like(gray, bool)
    rim[40:52, 99:101] = True
    flat = np.zeros_like(gray, bool)
    flat[120:132, 40:42] = True
    dust = np.zeros_like(gray, bool)
    dust[150:153, 150:153] = True
    d = find_defects(_prob_from(rim | flat | dust), gray, 0.5)
    assert not d.mask[35:57, 90:110].any()
    assert d.mask[flat].all() and d.mask[dust].all()
    assert (d.specks, d.content) == (2, 1)


def test_the_stretch_of_a_scratch_that_runs_along_an_outline_is_left_and_still_counts():
    """A crack crosses a flat backdrop, then follows the edge of a dark notch for 40 px: that stretch
    is left (a fill there would smear the notch into the backdrop), the rest is repaired, and the whole
    length counts for auto."""
    from oldphoto.stages.defects import OUTLINE_STRETCH_STEP, find_defects

    gray = np.full((160, 160), 0.6, np.float32)
    gray[100:, 120:] = 0.1  # the notch
    crack = np.zeros_like(gray, bool)
    crack[99, 20:140] = True  # across the backdrop, then along the notch's top edge (x 120–140)
    crack[99:150, 119] = True  # and down its left edge
    gray[crack] = 0.95
    d = find_defects(_prob_from(crack), gray, 0.5)
    assert d.strokes == 1 and d.mask[99, 20:100].all()
    assert not d.mask[110:145, 119].any()  # along the notch's left edge: left as it is
    whole = find_defects(_prob_from(crack), np.where(gray < 0.5, 0.6 - 0.9 * OUTLINE_STRETCH_STEP, gray), 0.5)
    assert whole.mask[110:145, 119].all()  # a milder step: repaired
    assert d.stroke_length == pytest.approx(whole.stroke_length)


def test_coloured_lines_and_lines_between_two_colours_are_scene_content():
    """A grass blade more colourful than its sides, or a cable's lit edge between a gray cable and a blue
    sky (luma alike), is content; a white scratch across a colourful scene is a scratch."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    def photo(left, right, line, rows=slice(20, 180)):
        img = np.empty((200, 200, 3), np.float32)
        img[:, :100], img[:, 100:] = left, right
        img[rows, 99:101] = line
        flagged = np.zeros((200, 200), bool)
        flagged[rows, 99:101] = True
        return find_defects(_prob_from(flagged), luma(img), 0.5, img)

    green = (0.25, 0.45, 0.2)
    assert photo(green, green, (0.9, 0.9, 0.85)).strokes == 1  # white scratch across grass
    assert photo(green, green, (0.95, 0.8, 0.2)).content == 1  # a yellow blade: adds colour
    sky, cable = (0.45, 0.6, 0.85), (0.62, 0.59, 0.58)  # luma 0.575 and 0.596: alike in gray
    assert photo(sky, cable, (0.95, 0.95, 0.95)).content == 1
    gray_sky, gray_cable = (0.575,) * 3, (0.596,) * 3
    assert photo(gray_sky, gray_cable, (0.95, 0.95, 0.95)).strokes == 1  # the same in gray: a scratch
    sepia = (0.55, 0.45, 0.33)
    assert photo(sepia, sepia, (0.92, 0.9, 0.86)).strokes == 1  # a white scratch on a toned print


def test_ink_on_a_gray_or_toned_print_is_scene_content_and_its_cracks_are_not():
    """A gray or toned print's colour is read beyond its tone: a blue pen line on sepia (a circle drawn
    round someone) and a blue or red one on gray are ink, kept.  A crack showing white or cream paper, a
    rust-brown line (foxing's colour) and a black pen line are judged as by their luma alone: repaired
    as scratches where they stand out (nothing tells black ink from a dark scratch)."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects
    from oldphoto.stages.tone import fit_tone

    sepia = np.array((1.1, 0.95, 0.72), np.float32)
    ramp = np.linspace(0.15, 0.85, 200, dtype=np.float32)[:, None, None]

    def judged(tint, line):
        img = np.ascontiguousarray(np.broadcast_to(ramp * tint, (200, 200, 3))).clip(0, 1)
        tone = fit_tone(img)
        img[20:180, 99:101] = line
        flagged = np.zeros((200, 200), bool)
        flagged[20:180, 99:101] = True
        d = find_defects(_prob_from(flagged), luma(img), 0.5, img, tone=tone)
        return d, find_defects(_prob_from(flagged), luma(img), 0.5), tone

    d, by_luma, tone = judged(sepia, (0.12, 0.18, 0.55))
    assert tone is not None and not tone.gray
    assert by_luma.strokes == 1 and d.content == 1 and not d.mask.any()  # blue ink on sepia
    d, by_luma, tone = judged(1.0, (0.12, 0.18, 0.55))
    assert tone is not None and tone.gray and by_luma.strokes == 1 and d.content == 1  # blue ink on gray
    assert judged(1.0, (0.8, 0.1, 0.1))[0].content == 1  # red ink on gray
    for tint in (sepia, 1.0):
        # (bare paper, cool or warm as paper and scanner make it: 0.93/0.95/1.0 was kept as ink on gray)
        for line in ((0.95, 0.95, 0.95), (0.92, 0.91, 0.86), (0.93, 0.95, 1.0), (0.90, 0.92, 0.97),
                     (0.55, 0.35, 0.25), (0.05, 0.05, 0.05)):
            d, by_luma, _ = judged(tint, line)
            assert np.array_equal(d.mask, by_luma.mask) and d.strokes == by_luma.strokes, (tint, line)
    assert judged(sepia, (0.95, 0.95, 0.95))[0].strokes == 1


def test_a_scratch_crossing_a_pen_line_is_repaired_and_the_line_kept():
    """A short white scratch across a blue pen line is joined to it in one region, whose colour makes it
    the print's: the scratch was left with the line.  Its pieces, brighter than around them, are judged
    on their own: repaired, the ink kept (on a sepia and a gray print)."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects
    from oldphoto.stages.tone import fit_tone

    ramp = np.linspace(0.25, 0.75, 200, dtype=np.float32)[:, None, None]
    for tint in (np.array((1.1, 0.95, 0.72), np.float32), 1.0):
        img = np.ascontiguousarray(np.broadcast_to(ramp * tint, (200, 200, 3))).clip(0, 1)
        tone = fit_tone(img)
        flagged = np.zeros((200, 200), bool)
        img[20:180, 99:101] = (0.12, 0.18, 0.55)  # the pen line
        img[120:122, 80:120] = 0.95  # the scratch across it
        flagged[20:180, 99:101] = flagged[120:122, 80:120] = True
        d = find_defects(_prob_from(flagged), luma(img), 0.5, img, tone=tone)
        assert d.mask[120:122, 80:97].all() and d.mask[120:122, 103:120].all()
        assert not d.mask[20:118, 97:103].any() and not d.mask[124:180, 97:103].any()
        assert d.strokes == 1 and d.content == 1


def test_a_gray_prints_added_colour_is_its_distance_from_the_warm_hues():
    """A gray print's tone has no hue (its chroma is rounding, 3e-8, which once pointed anywhere and took
    colours along it for damage's): its added colour is its distance from the warm hues of paper and
    stains, none within them."""
    from oldphoto.luma import chroma, colourfulness
    from oldphoto.stages.defects import WARM_HUES, colour_beyond_tone
    from oldphoto.stages.tone import Tone

    crop = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32) * 0.7  # (darker than paper)
    planes = chroma(crop)
    angle = np.degrees(np.arctan2(planes[..., 1], planes[..., 0]))
    warm = (angle >= WARM_HUES[0]) & (angle <= WARM_HUES[1])
    distance = colourfulness(planes)
    for degrees in WARM_HUES:
        edge = np.array([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], np.float32)
        along = np.maximum(planes @ edge, 0.0)[..., None]
        distance = np.minimum(distance, colourfulness(planes - along * edge))
    added = colourfulness(chroma(colour_beyond_tone(crop, Tone(None))))
    assert warm.any() and np.allclose(added[warm], 0.0, atol=1e-5)
    assert np.allclose(added[~warm], distance[~warm], atol=1e-5)


def test_a_glowing_coloured_line_is_scene_content():
    """A camera's date imprint: a bright orange digit whose dimmer orange glow reaches 6 px each side.
    Read 3 px out its sides are as colourful as it is; read beyond the glow, it adds colour: content."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    img = np.full((200, 200, 3), 0.4, np.float32)
    line = np.zeros((200, 200), np.float32)
    line[20:180, 99:101] = 1
    glow = cv2.GaussianBlur(cv2.dilate(line, np.ones((1, 13), np.uint8)), (0, 0), 1.5)[..., None]
    img = img * (1 - glow) + np.array((0.75, 0.35, 0.2), np.float32) * glow
    img[line > 0] = (0.98, 0.6, 0.45)
    d = find_defects(_prob_from(line > 0), luma(img), 0.5, img)
    assert d.content == 1 and d.strokes == 0
    white = img.copy()
    white[line > 0] = (0.95, 0.95, 0.95)  # a white scratch through the same glow: less colourful
    assert find_defects(_prob_from(line > 0), luma(white), 0.5, white).strokes == 1


def test_a_speck_more_colourful_than_its_surroundings_is_scene_content():
    """Damage takes colour away: an orange speck on a dark sky (a piece of a date imprint's digit) is the
    scene's, a white one is dust; and a glowing orange speck, whose ring is as orange as it is, is told
    by the pixels 8 px out, beyond its glow.  A gray photo has no colour to tell them by."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    img = np.full((120, 240, 3), 0.12, np.float32)  # a dark sky
    flagged = np.zeros((120, 240), bool)
    flagged[58:62, 38:42] = flagged[58:62, 118:122] = flagged[58:62, 198:202] = True
    glow = np.zeros((120, 240), np.float32)  # 5 px round the middle speck, as colourful as its whiter core
    cv2.circle(glow, (120, 60), 7, 1.0, -1)
    glow = cv2.GaussianBlur(glow, (0, 0), 1.0)[..., None]
    img = img * (1 - glow) + np.array((0.85, 0.45, 0.1), np.float32) * glow
    img[58:62, 38:42] = (1.0, 0.55, 0.12)
    img[58:62, 118:122] = (1.0, 0.7, 0.3)
    img[58:62, 198:202] = 0.93
    d = find_defects(_prob_from(flagged), luma(img), 0.5, img)
    assert d.specks == 1 and d.content == 2
    assert d.mask[58:62, 198:202].all() and not d.mask[:, :160].any()
    assert find_defects(_prob_from(flagged), luma(img), 0.5, None).specks == 3


def test_a_scratch_keeps_out_the_coloured_mark_it_touches():
    """A white scratch that crosses an imprint's orange digit is flagged with the digit's bright pixels
    (one region): the scratch is repaired, the digit's coloured pixels are not (damage takes colour away)."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    img = np.full((200, 200, 3), 0.12, np.float32)  # a dark sky
    img[90:96, 60:140] = (1.0, 0.55, 0.12)  # a digit's bar
    img[20:180, 99:101] = (0.93, 0.93, 0.93)  # the scratch across it
    flagged = np.zeros((200, 200), bool)
    flagged[20:180, 99:101] = True
    flagged[90:96, 80:120] = True  # the detector took the bar's middle with the scratch
    d = find_defects(_prob_from(flagged), luma(img), 0.5, img)
    assert d.strokes == 1
    assert d.mask[20:90, 99:101].all() and d.mask[96:180, 99:101].all()
    assert not d.mask[90:96, 80:99].any() and not d.mask[90:96, 101:120].any()
    gray = np.repeat(luma(img)[..., None], 3, axis=2)  # in gray nothing tells the bar from damage
    assert find_defects(_prob_from(flagged), luma(gray), 0.5, None).mask[90:96, 80:120].all()


def test_a_coloured_mark_stays_out_of_the_mask_whichever_stroke_comes_first():
    """A second white scratch passes 1 px beside the end of the orange bar the first one crosses: its
    fringe reaches the bar's last pixels.  They stay out of the mask whether the second scratch starts
    below the first (a later label: its fringe put them back) or above it."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    for top in (92, 10):
        img = np.full((200, 200, 3), 0.12, np.float32)
        img[90:96, 60:140] = (1.0, 0.55, 0.12)
        img[20:180, 99:101] = 0.93
        img[top:180, 121:123] = 0.93
        flagged = np.zeros((200, 200), bool)
        flagged[20:180, 99:101] = flagged[90:96, 80:120] = flagged[top:180, 121:123] = True
        d = find_defects(_prob_from(flagged), luma(img), 0.5, img)
        assert d.strokes == 2 and d.mask[96:180, 121:123].all(), top
        assert not d.mask[90:96, 80:99].any() and not d.mask[90:96, 101:120].any(), top


def test_a_scratch_across_a_colourful_part_of_the_scene_is_repaired_there_too():
    """A long white scratch, faded and soft-edged, crosses a red dress on a gray scene: over the dress
    it is less colourful than the dress around it, damage, though more colourful than the gray that most
    of its surroundings are (held against all of them, that stretch was left out of the repair)."""
    from oldphoto.luma import luma
    from oldphoto.stages.defects import find_defects

    img = np.full((300, 300, 3), 0.5, np.float32)
    img[120:180, 40:260] = (0.85, 0.15, 0.1)  # the dress
    line = np.zeros((300, 300), np.float32)
    line[20:280, 149:152] = 1
    soft = 0.7 * cv2.GaussianBlur(line, (0, 0), 0.8)[..., None]
    img = img * (1 - soft) + 0.95 * soft
    d = find_defects(_prob_from(line > 0), luma(img), 0.5, img)
    assert d.strokes == 1 and d.mask[20:280, 149:152].all()


def test_a_kept_defect_takes_its_bright_fringe_and_nothing_else():
    from oldphoto.stages.defects import find_defects

    rng = np.random.default_rng(0)
    gray = (0.3 + 0.02 * rng.standard_normal((120, 160))).astype(np.float32)  # a grainy background
    gray[60, 20:140] = 0.95  # the crack's core: what the detector is sure of
    gray[59, 20:140] = gray[61, 20:140] = 0.7  # its white fringe, one pixel each side
    gray[62:66, 20:140] += 0.03  # shading within the grain: not a fringe
    core = np.zeros_like(gray, bool)
    core[60, 20:140] = True
    d = find_defects(_prob_from(core), gray, 0.5)
    assert d.strokes == 1
    assert d.mask[59:62, 22:138].all()  # the core and its fringe are repaired together
    assert not d.mask[62:].any() and not d.mask[:59].any()
    # a dark crack's fringe is dark
    dark = 0.6 - (gray - 0.3)
    assert find_defects(_prob_from(core), dark, 0.5).mask[59:62, 22:138].all()


def test_auto_repairs_strokes_that_add_up_to_the_photo_side():
    from oldphoto.stages.defects import find_defects

    gray = np.full((200, 300), 0.3, np.float32)
    flagged = np.zeros_like(gray, bool)
    for y in (40, 100, 160):  # three scratches, 90 px each: 1.35 short sides
        gray[y, 20:110] = 0.95
        flagged[y, 20:110] = True
    d = find_defects(_prob_from(flagged), gray, 0.5)
    assert d.strokes == 3 and d.stroke_length == pytest.approx(1.35, abs=0.05) and d.worth_repairing()
    one = find_defects(_prob_from(flagged & (np.arange(200) < 70)[:, None]), gray, 0.5)
    assert one.strokes == 1 and not one.worth_repairing()


def test_dark_strokes_are_repaired_but_are_no_evidence_for_auto():
    """Ink, wires and branches are dark lines of a scene; a print's scratches are bright: the same three
    strokes that auto repairs when bright are left when dark, and a dark one counts for nothing beside a
    bright one.  Once a photo is repaired, its dark strokes are repaired too."""
    from oldphoto.stages.defects import find_defects

    for level, repair in ((0.95, True), (0.0, False)):
        gray = np.full((200, 300), 0.5, np.float32)
        flagged = np.zeros_like(gray, bool)
        for y in (40, 100, 160):  # 90 px each: 1.35 short sides
            gray[y, 20:110] = level
            flagged[y, 20:110] = True
        d = find_defects(_prob_from(flagged), gray, 0.5)
        assert d.strokes == 3 and d.stroke_length == pytest.approx(1.35, abs=0.05)
        assert d.dark_length == pytest.approx(0.0 if repair else d.stroke_length)
        assert d.worth_repairing() == repair and d.mask[100, 20:110].all()
    gray[40, 20:110] = 0.95  # one bright (0.45 short sides) and two dark: not enough
    assert not find_defects(_prob_from(flagged), gray, 0.5).worth_repairing()
    gray[100, 20:110] = gray[160, 20:110] = 0.95
    gray[20, 150:290] = 0.0  # three bright and a long dark one: repaired, the dark one with them
    flagged[20, 150:290] = True
    d = find_defects(_prob_from(flagged), gray, 0.5)
    assert d.worth_repairing() and d.mask[20, 150:290].all() and d.dark_length == pytest.approx(0.7, abs=0.03)


def _strokes(angles: list[float], size: int = 400, length: int = 120) -> np.ndarray:
    """Bright lines of ``length`` px at the given angles (degrees), on a grid of centres."""
    img = np.full((size, size), 0.3, np.float32)
    for k, angle in enumerate(angles):
        cx, cy = 70 + 130 * (k % 3), 70 + 130 * (k // 3)
        dx, dy = np.cos(np.radians(angle)) * length / 2, np.sin(np.radians(angle)) * length / 2
        cv2.line(img, (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy)), 0.95, 1)
    return img


def test_auto_does_not_take_many_lines_of_one_direction_for_damage():
    """Six short lines of one direction, or of two at right angles, are the scene's (the verticals of a
    house, a plaid); six in every direction, a few parallel ones, or long parallel ones (film-transport
    scratches) are damage."""
    from oldphoto.stages.defects import find_defects

    for angles, length, alignment, repair in (([88, 90, 92, 89, 91, 90], 100, 1.0, False),
                                              ([0, 30, 60, 90, 120, 150], 100, 0.0, True),
                                              ([0, 90, 0, 90, 0, 90], 100, 1.0, False),  # a grid
                                              ([90, 90, 90, 90, 90], 100, 0.0, True),
                                              ([90, 90, 90, 90, 90, 90], 126, 0.0, True)):
        gray = _strokes(angles, length=length)
        d = find_defects(_prob_from(gray > 0.5), gray, 0.5)
        assert d.strokes == len(angles) and d.stroke_length >= 1.0
        assert d.stroke_alignment == pytest.approx(alignment, abs=0.02)
        assert d.worth_repairing() == repair, angles


def _pieces(gray: np.ndarray, at: list[int], spans: list[tuple[int, int]], vertical: bool) -> None:
    """Bright lines at ``at`` (rows, or columns when ``vertical``), each drawn in pieces over ``spans``."""
    for k in at:
        for a, b in spans:
            if vertical:
                gray[a:b, k] = 0.95
            else:
                gray[k, a:b] = 0.95


def test_a_print_folded_in_four_is_damage_and_a_plaid_is_not():
    """The creases of a print folded in four, found in short pieces, run in two directions at right
    angles like a grid's lines, but each lies along one straight line across the print: they count.
    A plaid's lines, as straight and as broken, repeat in parallel: they still do not."""
    from oldphoto.stages.defects import find_defects

    fold = np.full((400, 400), 0.3, np.float32)
    spans = [(5, 65), (95, 155), (245, 305), (335, 395)]  # 8 pieces of 60 px: 1.2 short sides
    _pieces(fold, [205], spans, vertical=False)
    _pieces(fold, [210], spans, vertical=True)
    d = find_defects(_prob_from(fold > 0.5), fold, 0.5)
    assert d.strokes == 8 and d.stroke_length >= 1.0
    assert d.aligned_length == 0.0 and d.worth_repairing()

    plaid = np.full((400, 400), 0.3, np.float32)
    _pieces(plaid, [50, 150, 250, 350], [(20, 80), (120, 180), (220, 280), (320, 380)], vertical=False)
    _pieces(plaid, [100, 200, 300], [(20, 80), (120, 180), (220, 280), (320, 380)], vertical=True)
    d = find_defects(_prob_from(plaid > 0.5), plaid, 0.5)
    assert d.strokes == 28 and d.stroke_length >= 1.0
    assert d.aligned_length == pytest.approx(d.stroke_length) and not d.worth_repairing()


def test_hysteresis_takes_the_soft_edges_of_a_defect_only():
    from oldphoto.stages.defects import hysteresis

    prob = np.zeros((50, 50), np.float32)
    prob[20, 5:45] = 0.9
    prob[19, 5:45] = prob[21, 5:45] = 0.3  # the scratch's soft edges
    prob[40, 5:45] = 0.3  # weak everywhere: not a defect
    m = hysteresis(prob, 0.5, 0.25)
    assert m[19:22, 5:45].all() and not m[40].any()


def test_specks_count_and_a_doubtful_large_region_is_left_alone():
    from oldphoto.stages.defects import find_defects

    gray = np.full((300, 300), 0.4, np.float32)
    flagged = np.zeros_like(gray, bool)
    for y, x in ((30, 30), (100, 200), (250, 80)):
        gray[y:y + 2, x:x + 2] = 0.95
        flagged[y:y + 2, x:x + 2] = True
    one = find_defects(_prob_from(flagged), gray, 0.5)
    assert one.specks == 3 and one.mask.sum() == 12
    assert not one.worth_repairing()  # specks alone prove nothing: collars and highlights look like dust
    # a large bright patch (a sky, say) flagged with middling confidence is scene content
    gray[150:230, 150:230] = 0.95
    patch = np.zeros_like(flagged)
    patch[150:230, 150:230] = True
    assert not find_defects(_prob_from(patch, 0.6), gray, 0.5).mask.any()
    assert find_defects(_prob_from(patch, 0.95), gray, 0.5).blobs == 1  # a sure hole is repaired


def test_repeated_short_strokes_are_lettering_not_scratches():
    from oldphoto.stages.defects import find_defects

    gray = np.full((400, 400), 0.3, np.float32)
    flagged = np.zeros_like(gray, bool)
    for x in range(100, 200, 20):  # "IIIII": five equal bright bars side by side
        gray[50:80, x:x + 2] = 0.95
        flagged[50:80, x:x + 2] = True
    gray[200:230, 300:302] = 0.95  # one bar of the same size alone: a scratch
    flagged[200:230, 300:302] = True
    for x in (20, 60):  # two long parallel scratches (film): never judged as a pattern
        gray[100:390, x] = 0.95
        flagged[100:390, x] = True
    d = find_defects(_prob_from(flagged), gray, 0.5)
    assert not d.mask[50:80, 100:200].any()
    assert d.mask[200:230, 300:302].all() and d.mask[100:390, 20].all() and d.mask[100:390, 60].all()
    assert (d.strokes, d.content) == (3, 5)


def test_a_line_of_white_writing_is_left_whole_on_a_photo_repaired_for_its_scratches():
    from oldphoto.stages.defects import find_defects

    gray = np.full((400, 400), 0.15, np.float32)  # a dark sweater
    flagged = np.zeros_like(gray, bool)

    def ink(y0, y1, x0, x1):
        gray[y0:y1, x0:x1] = 0.9
        flagged[y0:y1, x0:x1] = True

    # "Paris, août" in white ink, as the detector flags it: two upright letters far apart (strokes, not
    # a repeated pattern), round letters between them (rings: scene content), a comma and an accent
    ink(300, 321, 40, 43)  # P's stem
    for x in (56, 76, 96, 124, 144):  # a, r, s, o, u: rings of 2-px ink
        ink(305, 321, x, x + 14)
        gray[307:319, x + 2:x + 12] = 0.15
        flagged[307:319, x + 2:x + 12] = False
    ink(321, 326, 114, 117)  # the comma
    ink(298, 302, 150, 154)  # the accent over u
    ink(302, 321, 166, 169)  # t's stem
    ink(20, 390, 250, 252)  # long scratches: the photo is repaired
    ink(100, 380, 330, 332)
    ink(150, 175, 60, 62)  # a short scratch alone
    d = find_defects(_prob_from(flagged, 0.6), gray, 0.5)
    assert d.worth_repairing()
    assert not d.mask[295:330, 30:180].any()  # no letter, comma or accent is filled in
    assert d.mask[20:390, 250:252].all() and d.mask[100:380, 330:332].all() and d.mask[150:175, 60:62].all()
    assert d.strokes == 3


def test_a_branching_crack_network_is_a_defect_and_a_wide_region_is_not():
    from oldphoto.stages.defects import find_defects

    gray = np.full((256, 256), 0.35, np.float32)
    crack = np.zeros_like(gray, np.uint8)
    # a fold crack across the photo with branches (one component, far too wide a box for a stroke)
    for (x0, y0), (x1, y1) in (((0, 120), (250, 60)), ((90, 98), (90, 250)), ((180, 77), (240, 200)),
                               ((40, 110), (20, 10))):
        cv2.line(crack, (x0, y0), (x1, y1), 1, 2)
    region = crack > 0
    gray[region] = 0.9
    d = find_defects(_prob_from(region), gray, 0.5)
    assert d.mask[region].all() and d.strokes == 1
    # a ragged flagged patch as wide as a hand (a white wall, say) stays scene content
    gray2 = np.full((256, 256), 0.35, np.float32)
    patch = np.zeros_like(region)
    patch[60:200, 100:130] = True
    patch[60:200:7, 95:135] = True  # a ragged outline: long, but not thin
    gray2[patch] = 0.9
    assert not find_defects(_prob_from(patch, 0.6), gray2, 0.5).mask.any()
    # a lattice of thin lines as long as the crack (plaid, railings) is a pattern, not a crack
    lattice = np.zeros_like(region)
    for k in range(40, 220, 20):
        lattice[k:k + 2, 40:220] = True
        lattice[40:220, k:k + 2] = True
    gray3 = np.full((256, 256), 0.35, np.float32)
    gray3[lattice] = 0.9
    assert not find_defects(_prob_from(lattice, 0.6), gray3, 0.5).mask.any()


def test_the_prints_own_edge_is_counted_but_not_repaired_and_a_scratch_into_the_frame_is():
    """A crease across a corner, the border curling in, a tear that joins a white margin: the print's
    edge, where a fill would have the picture on one side only.  Left alone, still evidence for auto."""
    from oldphoto.stages.defects import find_defects

    def judged(lines, margin=False):
        gray = np.full((300, 300), 0.3, np.float32)
        if margin:
            gray[:2] = 0.95  # the print's white border along the top
        flagged = np.zeros((300, 300), np.uint8)
        for start, end in lines:
            cv2.line(flagged, start, end, 1, 1)
        gray[flagged > 0] = 0.95
        return find_defects(_prob_from(flagged > 0), gray, 0.5), flagged > 0

    corner = ((264, 0), (299, 35))  # a crease across the top-right corner, 45°
    curl = ((100, 299), (130, 284))  # the border curling in from the bottom, at 27° to it
    into = ((0, 150), (35, 150))  # a scratch running into the left side of the frame
    tear = ((150, 0), (150, 16))  # a tear down from the top, 2 px wide
    tear_side = ((151, 0), (151, 16))
    for edge in (corner, curl):
        d, drawn = judged([edge, into])
        assert (d.edges, d.strokes) == (1, 1)
        assert not (d.mask & drawn)[:, 50:].any() and d.mask[150, :35].all()
        # the edge still counts as evidence of damage
        assert d.stroke_length > (33 + 35) / 300
    with_margin, drawn = judged([tear, tear_side], margin=True)
    assert (with_margin.edges, with_margin.strokes) == (1, 0) and not with_margin.mask.any()
    alone, drawn = judged([tear, tear_side])
    assert (alone.edges, alone.strokes) == (0, 1) and alone.mask[drawn].all()


def test_a_curve_cutting_off_a_corner_is_the_prints_edge():
    """The scratched girl's bottom-left corner curls in: a white curve from her left border to the bottom
    side, most of it farther from either side than FRAME_BAND, was filled as a crack (a smear, her border
    cut off).  A stroke within a corner's square that reaches both of its sides is the print's edge; one
    that stops short of a side is a scratch."""
    from oldphoto.stages.defects import find_defects

    def judged(points):
        gray = np.full((300, 300), 0.3, np.float32)
        flagged = np.zeros((300, 300), np.uint8)
        cv2.polylines(flagged, [np.array(points, np.int32)], False, 1, 1)
        gray[flagged > 0] = 0.95
        return find_defects(_prob_from(flagged > 0), gray, 0.5), flagged > 0

    curl, drawn = judged([(4, 240), (30, 265), (55, 299)])  # from 4 px off the left side to the bottom
    assert (curl.edges, curl.strokes) == (1, 0) and not (curl.mask & drawn).any()
    short, drawn = judged([(15, 240), (38, 265), (60, 299)])  # 15 px short of the left side
    assert (short.edges, short.strokes) == (0, 1) and short.mask[drawn].all()


def test_a_dark_scratch_running_into_the_frame_is_repaired_not_taken_for_the_prints_edge():
    """The bright-margin test compares the frame with a stroke's brightness: for a dark stroke any
    ordinary picture beyond it is brighter, and it was left alone as the print's edge."""
    from oldphoto.stages.defects import find_defects

    for value in (0.95, 0.02):  # a white tear, a dark scratch: both run into the top, no margin there
        gray = np.full((300, 300), 0.5, np.float32)
        flagged = np.zeros((300, 300), np.uint8)
        cv2.line(flagged, (150, 0), (150, 16), 1, 1)
        cv2.line(flagged, (151, 0), (151, 16), 1, 1)
        gray[flagged > 0] = value
        d = find_defects(_prob_from(flagged > 0), gray, 0.5)
        assert (d.edges, d.strokes) == (0, 1) and d.mask[flagged > 0].all()


def test_the_lines_of_writing_are_found_quickly_among_thousands_of_specks():
    # a dusty scan flags thousands of letter-sized specks: each was held against every other one within
    # a tenth of the photo by x, and every line's box against every region, in Python (a grid of 20 000
    # specks: 15 s, longer than the rest of find_defects; now a fraction of a second)
    import time

    from oldphoto.stages.writing import lines_of_writing

    rows = [(0, 0, 4000, 4000, 0)] + [(20 + 27 * c, 20 + 27 * r, 11, 11, 97) for r in range(142)
                                      for c in range(142)]
    stats = np.array(rows, np.int32)
    kinds = ["content"] + ["speck"] * (len(rows) - 1)
    start = time.perf_counter()
    found = lines_of_writing(stats, kinds, 400.0)
    assert time.perf_counter() - start < 2.0
    assert sorted(found) == list(range(1, len(rows)))  # (each row of the grid lines up as writing)
    stats[1::2, 1] += 13  # every other speck half a height lower: no line left (overlapping too little)
    assert lines_of_writing(stats, kinds, 400.0) == []


def _cursive(gray: np.ndarray, flagged: np.ndarray, x0: int, base: int, loops: int, value: float) -> None:
    """A cursive word in ink of ``value``: a tall "l" (flagged, as the detector flags the tall letters of
    handwriting) joined to a row of loops ("eeee", unflagged), 2 px pen."""
    t = np.linspace(0, 2 * np.pi * loops, 40 * loops)
    loop = np.column_stack([x0 + 14 + 2.2 * t + 3.5 * np.sin(t), base - 5 * (1 - np.cos(t))])
    pen = np.zeros(gray.shape, np.uint8)
    cv2.polylines(pen, [np.round(loop).astype(np.int32)], False, 1, 2)
    cv2.line(pen, (x0, base), (x0 + 14, base), 1, 2)  # the join to the next letter
    tall = np.zeros(gray.shape, np.uint8)
    cv2.line(tall, (x0, base - 2), (x0 + 6, base - 26), 1, 2)
    gray[(pen | tall) > 0] = value
    flagged |= tall > 0


def test_handwriting_on_a_plain_border_is_kept_when_the_detector_flags_only_its_tall_letters():
    from oldphoto.stages.defects import find_defects

    for ground, value in ((0.95, 0.15), (0.08, 0.9)):  # dark ink on a white border, white ink on a dark page
        gray = np.full((300, 400), ground, np.float32)
        gray += np.random.default_rng(0).normal(0, 0.01, gray.shape).astype(np.float32)  # paper grain
        flagged = np.zeros(gray.shape, bool)
        _cursive(gray, flagged, 40, 100, 5, value)  # "leeeee leeee": the first word's "l" flagged
        _cursive(gray, np.zeros_like(flagged), 130, 100, 4, value)  # "leeee": not flagged at all
        cv2.line(gray, (300, 200), (306, 178), value, 2)  # the same mark alone on the border: a scratch
        scratch = np.zeros(gray.shape, np.uint8)
        cv2.line(scratch, (300, 200), (306, 178), 1, 2)
        flagged |= scratch > 0
        d = find_defects(_prob_from(flagged), gray, 0.5)
        assert not d.mask[70:110, 30:230].any(), ground  # the tall letter of the word is kept
        assert d.mask[scratch > 0].all(), ground
        assert d.strokes == 1


def test_handwriting_on_the_picture_itself_is_kept_when_its_trail_is_a_pens():
    """A caption on a face or a sweater has no plain ground: its trail counts when it is a pen's (one
    width along it, closing loops), while the wavering, loopless pieces of a crack beside a short crack
    on the same ground are still no writing."""
    from oldphoto.stages.defects import find_defects

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    for value, ground in ((0.95, 0.45), (0.05, 0.6)):
        gray = ground + 0.08 * np.sin(xx / 7.0) * np.cos(yy / 11.0)  # a ground that is no page or border
        gray += np.random.default_rng(0).normal(0, 0.01, gray.shape).astype(np.float32)
        ink = np.zeros(gray.shape, np.uint8)  # "ie nous" in script, 1-px pen: only the "i" flagged
        cv2.putText(ink, "e nous", (46, 100), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.0, 255, 1, cv2.LINE_AA)
        tall = np.zeros(gray.shape, np.uint8)
        cv2.line(tall, (40, 100), (44, 86), 255, 2)
        gray = gray * (1 - np.maximum(ink, tall) / 255.0) + value * np.maximum(ink, tall) / 255.0
        flagged = tall > 127
        crack = np.zeros(gray.shape, np.uint8)  # a crack: a flagged stroke and unflagged pieces in its line
        cv2.line(crack, (60, 230), (64, 206), 1, 2)
        for x in range(80, 240, 16):  # pieces of changing width, kinked but closing no loop
            cv2.polylines(crack, [np.array([[x, 228], [x + 4, 218], [x + 2, 212]], np.int32)], False, 1,
                          1 + (x // 16) % 3)
        gray[crack > 0] = value
        flagged[200:240, 55:70] |= crack[200:240, 55:70] > 0
        d = find_defects(_prob_from(flagged), gray.astype(np.float32), 0.5)
        assert not d.mask[70:110, 30:150].any(), value  # the tall letter of the word is kept
        assert d.mask[200:240, 55:70][crack[200:240, 55:70] > 0].all(), value


def test_a_capital_does_not_make_a_caption_on_the_picture_a_crack():
    """Handwriting's pieces are of two sizes: a capital (or an ascender) stands about twice as tall as the
    small letters.  With only small letters flagged, "Paris" in white ink on the scratched girl's curtain
    was judged by its small letters' height, and lost "aris" once she was repaired for her scratches."""
    from oldphoto.stages.defects import find_defects

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    for value, ground in ((0.95, 0.45), (0.05, 0.6)):
        gray = ground + 0.08 * np.sin(xx / 7.0) * np.cos(yy / 11.0)  # a ground that is no page or border
        gray += np.random.default_rng(0).normal(0, 0.01, gray.shape).astype(np.float32)
        ink = np.zeros(gray.shape, np.uint8)  # a 19-px capital P apart from an 11-px cursive "aris"
        cv2.putText(ink, "P", (46, 100), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.85, 255, 1, cv2.LINE_AA)
        cv2.putText(ink, "aris", (66, 100), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.0, 255, 1, cv2.LINE_AA)
        gray = gray * (1 - ink / 255.0) + value * ink / 255.0
        flagged = np.zeros(gray.shape, bool)
        flagged[86:104, 84:96] = ink[86:104, 84:96] > 127  # the "r" the detector flags
        d = find_defects(_prob_from(flagged, 0.6), gray.astype(np.float32), 0.5)
        assert not d.mask[70:110, 40:130].any(), value


def test_prints_restored_apart_were_repaired_for_dust_alone_when_every_print_repaired_was():
    """A clean print (quality, nothing repaired) beside one repaired for its dust alone: the scan was
    repaired for dust alone (the report said that lines repaired may be the scene's)."""
    from oldphoto.stages.defects import Defects, merged_prints

    dusty = Defects(np.ones((4, 4), bool), dust=3, dust_only=True, strokes=1, stroke_length=0.1)
    clean = Defects(np.zeros((4, 4), bool))
    scratched = Defects(np.ones((4, 4), bool), strokes=2, stroke_length=1.5)
    a, b = (slice(0, 4), slice(0, 4)), (slice(0, 4), slice(6, 10))
    merged = merged_prints([(a, dusty), (b, clean)], (4, 10), [True, False])
    assert merged.dust_only and merged.dust == 3 and merged.mask[:, :4].all() and not merged.mask[:, 4:].any()
    assert not merged_prints([(a, dusty), (b, scratched)], (4, 10), [True, True]).dust_only
    assert not merged_prints([(a, clean), (b, clean)], (4, 10), [False, False]).dust_only
    assert merged_prints([(a, None), (b, None)], (4, 10), [False, False]) is None


@pytest.mark.parametrize("tilt", [3.0, -3.0])
def test_the_edge_of_a_print_lying_askew_is_its_own_not_the_boxs(tilt):
    """A print found on a surround askew is judged in its bounding box, whose sides are not its edge: a
    bright line along its curled left border, off the box's side by more than the strip the frame rules
    allow, was repaired as a crack; read in the print's own axes, it is the print's edge."""
    from oldphoto.stages.defects import find_defects
    from oldphoto.stages.prints import print_on_surround

    scan = np.full((260, 210), 0.2, np.float32)
    corners = cv2.boxPoints(((105.0, 130.0), (140.0, 190.0), tilt))
    cv2.fillPoly(scan, [np.round(corners).astype(np.int32)], 0.3)
    found = print_on_surround(scan)
    assert found is not None and found.frame is not None
    # the print's left side, from its top-left to its bottom-left corner, and the line 2 px inside it
    left = sorted(corners, key=lambda p: p[0])[:2]
    top, bottom = sorted(left, key=lambda p: p[1])
    inward = np.array([np.cos(np.radians(tilt)), np.sin(np.radians(tilt))]) * 2
    # the half of it farther from the box's side
    a, b = (top, top + 0.45 * (bottom - top)) if tilt < 0 else (top + 0.55 * (bottom - top), bottom)
    a, b = a + 0.1 * (b - a) + inward, b - 0.1 * (b - a) + inward
    cv2.line(scan, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), 0.95, 1)
    gray, flagged = scan[found.box], scan[found.box] > 0.9
    askew = find_defects(_prob_from(flagged), gray, 0.5, frame=found.frame)
    assert askew.edges == 1 and askew.strokes == 0 and not askew.mask.any()
    assert find_defects(_prob_from(flagged), gray, 0.5).strokes == 1  # by the box's sides


def _face_landmarks(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """68 landmarks in dlib's order for an oval face centred at (cx, cy): the jaw from ear to ear through
    the chin (cy + ry), the brows at cy - 0.6 ry, the rest at the centre."""
    points = np.tile([cx, cy], (68, 1)).astype(np.float64)
    angles = np.linspace(np.pi, 0.0, 17)  # from the left ear down to the chin and up to the right ear
    points[:17] = np.column_stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)])
    brows_x = np.linspace(cx - 0.8 * rx, cx + 0.8 * rx, 10)
    points[17:27] = np.column_stack([brows_x, np.full(10, cy - 0.6 * ry)])
    return points


def test_a_shirt_front_under_a_face_is_clothing_and_a_scratch_across_the_chest_is_not():
    from oldphoto.stages.defects import clothing_zone, find_defects

    gray = np.full((400, 400), 0.15, np.float32)  # a dark suit, a dark backdrop
    flagged = np.zeros_like(gray, bool)
    face = _face_landmarks(200, 100, 40, 50)  # chin at y 150, ears at y 100
    zone = clothing_zone([face], gray.shape)
    assert zone[160, 200] and zone[120, 243]  # under the chin, beside the jaw
    assert not zone[100, 200]  # the face itself
    assert not zone[160, 300] and not zone[260, 200]  # beyond the face's width, or farther down
    shirt = (slice(155, 200), slice(185, 188))  # a white shirt front between lapel and tie: 45 x 3 px
    scratch = (slice(300, 303), slice(20, 380))  # a scratch across the chest, under the zone
    crossing = (slice(170, 173), slice(225, 390))  # one running into the zone: mostly outside it
    across_chin = (slice(130, 142), slice(190, 193))  # a crack on the chin, inside the face's outline
    for box in (shirt, scratch, crossing, across_chin):
        gray[box] = 0.9
        flagged[box] = True
    asked = []

    def faces():
        asked.append(True)
        return [face]

    d = find_defects(_prob_from(flagged), gray, 0.5, faces=faces)
    assert asked == [True]  # looked for once
    assert not d.mask[shirt].any() and d.content == 1
    assert d.mask[scratch].all() and d.mask[crossing].all() and d.mask[across_chin].all()
    without = find_defects(_prob_from(flagged), gray, 0.5)
    assert without.mask[shirt].all() and without.stroke_length > d.stroke_length  # no evidence of damage
    # no strokes: the faces are not looked for (dlib's detector costs a second on a group photo)
    speck = np.zeros_like(flagged)
    speck[300:303, 50:53] = True
    asked.clear()
    find_defects(_prob_from(speck), gray, 0.5, faces=faces)
    assert asked == []
