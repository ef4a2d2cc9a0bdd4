"""The face-part box measure (``engine/regions/boxes.py``): boxes placed from the FFHQ alignment
landmarks, and out/in change ratios on synthetic changes whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from stylestudio.engine.regions.boxes import (FACE_BOXES, FFHQ_LANDMARKS, box_change, box_mask, box_ratio,
                                              inner_face_mask)

SIZE = 128


def test_each_box_holds_its_landmarks_and_no_box_overlaps_another() -> None:
    (le, re, nose, ml, mr) = FFHQ_LANDMARKS
    holds = {"eyes": (le, re), "nose": (nose,), "mouth": (ml, mr)}
    for part, points in holds.items():
        x0, y0, x1, y1 = FACE_BOXES[part]
        for x, y in points:
            assert x0 < x < x1 and y0 < y < y1, (part, x, y)
    x0, y0, x1, y1 = FACE_BOXES["hair"]
    assert y0 == 0 and y1 < le[1] - 0.2 and x0 < le[0] and x1 > re[0]  # the crown, above the forehead
    masks = {p: box_mask(p, SIZE) for p in FACE_BOXES}
    for a in masks:
        assert masks[a].any()
        for b in masks:
            assert a == b or not (masks[a] & masks[b]).any(), (a, b)


def test_the_eyes_box_is_where_the_ffhq_template_puts_the_eyes() -> None:
    """On a 512-px picture the template's eye centres (193, 240) and (319, 240) are box pixels, the
    middle of the mouth and the nose tip are not."""
    m = box_mask("eyes", 512)
    assert m[240, 193] and m[240, 319]
    assert not m[371, 257] and not m[314, 257]
    assert box_mask("mouth", 512)[371, 257] and box_mask("nose", 512)[300, 257]


@pytest.mark.parametrize("part", sorted(FACE_BOXES))
def test_a_change_only_inside_the_box_measures_zero_outside(part: str) -> None:
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 255, (SIZE, SIZE, 3))
    after = before.copy()
    inside = box_mask(part, SIZE)
    after[inside] += 20.0
    cin, cout = box_change(before, after, part)
    assert cin == pytest.approx(20.0) and cout == 0.0
    assert box_ratio(before, after, part) == 0.0


def test_a_change_everywhere_measures_one_and_the_margin_is_not_counted() -> None:
    before = np.zeros((SIZE, SIZE, 3))
    assert box_ratio(before, before + 7.0, "mouth") == pytest.approx(1.0)
    # a halo right at the box's edge (inside the margin) is no leak; one beyond it is
    inside = box_mask("mouth", SIZE)
    from stylestudio.engine.regions.masks import dilate

    halo = dilate(inside, 2) & ~inside
    after = before.copy()
    after[inside] = 10.0
    after[halo] = 10.0
    assert box_ratio(before, after, "mouth", margin=0.03) == 0.0
    assert box_ratio(before, after, "mouth", margin=0.0) > 0.0
    beyond = ~dilate(inside, round(0.03 * SIZE))  # everything past the margin
    after[beyond] = 1.0
    cin, cout = box_change(before, after, "mouth")
    assert cin == pytest.approx(10.0) and cout == pytest.approx(1.0)


def test_nothing_changed_inside_is_infinitely_unlocal_and_unknown_parts_are_named() -> None:
    before = np.zeros((SIZE, SIZE, 3))
    after = before.copy()
    after[:4] = 5.0  # only the top rows: outside the mouth box
    assert box_ratio(before, after, "mouth") == float("inf")
    with pytest.raises(KeyError, match="no face-part box 'ears'"):
        box_mask("ears", SIZE)


def test_the_face_only_outside_counts_the_inner_face_and_not_the_background() -> None:
    """A hair transfer that also recolours the background and the side hair (outside the crown box
    and the face) leaks by the plain measure but not onto the face; a tint of the face counts."""
    face = inner_face_mask(SIZE)
    le, re, _, ml, mr = (FFHQ_LANDMARKS * SIZE).astype(int)
    assert face[le[1], le[0]] and face[re[1], re[0]] and face[ml[1], ml[0]] and face[mr[1], mr[0]]
    assert not face[2, 2] and not face[SIZE - 3, SIZE // 2]  # a corner, the bottom edge (neck, clothes)
    before = np.zeros((SIZE, SIZE, 3))
    after = before.copy()
    after[box_mask("hair", SIZE)] = 30.0
    after[~face & ~box_mask("hair", SIZE)] = 3.0
    assert box_ratio(before, after, "hair") > 0.05
    assert box_change(before, after, "hair", face_only=True) == (pytest.approx(30.0), 0.0)
    after[face] = 6.0
    assert box_change(before, after, "hair", face_only=True)[1] == pytest.approx(6.0)


@pytest.mark.slow
def test_the_default_cli_transfer_is_local_by_the_boxes(default_generator, tmp_path, capsys) -> None:
    """``stylestudio transfer --region mouth`` (and eyes, nose) with ``--no-fit``, each region's tuned
    query (the default before new transfers were fitted): the default model's picture changes in the
    part's FFHQ-layout box and at most 15 % as much outside it. (The quick fit, the default now, is
    not held to it on this one pair: its mouth measures 0.156 here, docs/regional_transfer.md.)"""
    from PIL import Image

    from stylestudio.cli import main

    plain = tmp_path / "plain.png"
    assert main(["generate", "--seed", "12", "--size", "256", "-o", str(plain)]) == 0
    base = np.asarray(Image.open(plain)).astype(np.float32)
    for part in ("mouth", "eyes", "nose"):
        out = tmp_path / f"{part}.png"
        assert main(["transfer", "--target", "seed:12", "--reference", "seed:34", "--region", part,
                     "--size", "256", "--no-fit", "-o", str(out)]) == 0, capsys.readouterr().err
        after = np.asarray(Image.open(out)).astype(np.float32)
        cin, cout = box_change(base, after, part)
        print(f"{part}: in {cin:.2f} out {cout:.2f} out/in {cout / cin:.3f}")
        assert cin > 1.0, part  # the part took something of the reference's look
        assert cout <= 0.15 * cin, part
