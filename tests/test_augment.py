"""Darknet's augmentation: HSV conversions, and labels that follow the placement (the reference
commit's) or the crop, the resize and the flip."""
import numpy as np
import pytest

from darknet_py.data.augment import (
    augment_detection,
    fill_truth,
    hsv_to_rgb,
    letterbox_crop,
    place_detection,
    place_image,
    rgb_to_hsv,
)
from darknet_py.data.labels import label_path


def test_hsv_round_trip():
    im = np.random.default_rng(0).random((3, 20, 30), dtype=np.float32)
    im[:, 0, 0] = .5                               # grey: no hue
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(im)), im, atol=2e-6)


@pytest.mark.parametrize("augment", [place_detection, augment_detection], ids=["place", "crop"])
@pytest.mark.parametrize("seed", range(6))
def test_labels_follow_the_image(seed, augment):
    """A red box on black: after placement (or crop), resize and flip its truth still sits on red."""
    im = np.zeros((3, 120, 160), np.float32)
    im[0, 30:70, 50:110] = 1                        # x 50..110, y 30..70
    boxes = np.array([[3, 80 / 160, 50 / 120, 60 / 160, 40 / 120]], np.float32)
    sized, truth = augment(im, boxes, 64, 48, np.random.default_rng(seed), .2, 0, 1, 1, 30)
    assert sized.shape == (3, 48, 64)
    x, y, w, h, cls = truth[0]
    assert cls == 3 and 0 < w <= 1 and 0 < h <= 1 and not truth[1:].any()
    cx, cy = int(x * 64), int(y * 48)
    assert sized[0, cy, cx] > .9 and sized[1, cy, cx] < .1
    top, bottom = int((y - h / 2) * 48) + 1, int((y + h / 2) * 48) - 1
    inside = sized[0, top:bottom, int((x - w / 2) * 64) + 1:int((x + w / 2) * 64) - 1]
    assert inside.min() > .5                       # the whole truth box is red


def test_letterboxed_crop_by_hand():
    """AlexeyAB's letter_box=1 with the crop: a 500x375 image for a square network gets a crop
    62 rows taller each side (delta (500 - 375) / 2 = 62.5, each side truncated toward zero as
    C's float to int); a 300x600 one 150 columns wider each side. The jitter's draws come first
    (here -3, 4 / 5, -6). Without jitter the resize keeps the aspect: the truth box's rows move
    to (187.5 + 62) / 499 and its height shrinks by 375 / 499; the band above is the image's
    edge row (crop_image clamps)."""
    assert letterbox_crop(-3, 4, 5, -6, 500, 375, 416, 416) == (-3, 4, int(5 - 62.5), int(-6 - 62.5))
    assert letterbox_crop(0, 0, 0, 0, 500, 375, 416, 416) == (0, 0, -62, -62)
    assert letterbox_crop(0, 0, 0, 0, 300, 600, 416, 416) == (-150, -150, 0, 0)
    assert letterbox_crop(0, 0, 0, 0, 640, 320, 608, 304) == (0, 0, 0, 0)      # the same aspect
    im = np.zeros((3, 375, 500), np.float32)
    im[1, 0] = 1                                    # the top row green
    im[0, 150:225, 200:300] = 1
    boxes = np.array([[2, .5, .5, .2, .2]], np.float32)
    sized, truth = augment_detection(im, boxes, 100, 100, np.random.default_rng(0), 0, 0, 1, 1, 30, flips=False,
                                     letter_box=True)
    x, y, w, h, cls = truth[0]
    assert cls == 2
    np.testing.assert_allclose([x, y, w, h], [.5, (187.5 + 62) / 499, .2, .2 * 375 / 499], rtol=1e-6)
    band = int(62 / 499 * 100)                      # rows of the network image above the photo
    assert (sized[1, :band] == 1).all() and (sized[0, :band] == 0).all()
    plain, plain_truth = augment_detection(im, boxes, 100, 100, np.random.default_rng(0), 0, 0, 1, 1, 30,
                                           flips=False)
    np.testing.assert_allclose(plain_truth[0, :4], [.5, .5, .2, .2], rtol=1e-6)    # stretched: unchanged


def test_truth_rows_are_shuffled_and_capped():
    boxes = np.array([[k % 4, .1 + .02 * k, .5, .1, .1] for k in range(40)], np.float32)
    truth = fill_truth(boxes, np.random.default_rng(1), 30)
    assert truth.shape == (30, 5) and (truth[:, 2] > 0).all()          # 30 of the 40
    assert not np.array_equal(truth[:, 0], np.sort(truth[:, 0]))     # shuffled


def test_thin_boxes_are_dropped():
    """darknet fill_truth_detection drops boxes under .001 wide or high; the others keep
    their rows, zero padding after them."""
    boxes = np.array([[0, .2, .5, .1, .1], [1, .5, .5, .0005, .2], [2, .7, .5, .2, .0009], [3, .8, .5, .1, .1]],
                     np.float32)
    truth = fill_truth(boxes, np.random.default_rng(1), 30)
    assert sorted(truth[:2, 4]) == [0, 3]
    assert not truth[2:].any()


def test_label_paths_follow_darknet():
    assert str(label_path("/d/VOC2007/JPEGImages/000001.jpg")) == "/d/VOC2007/labels/000001.txt"
    assert str(label_path("/d/coco/images/train2014/x.png")) == "/d/coco/labels/train2014/x.txt"
    assert str(label_path("/d/raw/a.JPEG")) == "/d/labels/a.txt"


def test_place_image_is_bilinear_with_black_beyond_the_edge():
    """darknet place_image on a 2x2 image scaled to 4x4 at (1, 1): sample (x/4)*2, bilinear,
    the pixels past the right and bottom edges reading 0."""
    im = np.array([[[1, 2], [3, 4]]], np.float32)
    canvas = np.full((1, 6, 6), .5, np.float32)
    place_image(im, 4, 4, 1, 1, canvas)
    expected = np.array([[1, 1.5, 2, 1], [2, 2.5, 3, 1.5], [3, 3.5, 4, 2], [1.5, 1.75, 2, 1]], np.float32)
    np.testing.assert_allclose(canvas[0, 1:5, 1:5], expected)
    assert (canvas[0, 0] == .5).all() and (canvas[0, 5] == .5).all() and (canvas[0, :, 0] == .5).all()


def test_placement_on_grey_by_hand():
    """jitter 0 on a 100x50 image for a 64x64 net: new_ar = 2, so the image fills the width,
    32 rows high, at a random top offset dy on grey; a box (.5 .5 .5 .5) becomes
    (.5, (16 + dy) / 64, .5, .25) whatever the flip."""
    im = np.random.default_rng(0).uniform(.6, 1, (3, 50, 100)).astype(np.float32)     # never grey
    boxes = np.array([[1, .5, .5, .5, .5]], np.float32)
    for seed in range(8):
        sized, truth = place_detection(im, boxes, 64, 64, np.random.default_rng(seed), 0, 0, 1, 1, 30)
        rows = np.flatnonzero(np.abs(sized - .5).max(axis=(0, 2)) > 1e-6)
        assert len(rows) == 32 and rows[-1] - rows[0] == 31                  # the image's 32 rows
        dy = rows[0]                                                          # int(dy) of the draw
        x, y, w, h, cls = truth[0]
        assert (x, w, h, cls) == pytest.approx((.5, .5, .25, 1), abs=1e-6)
        assert dy / 64 <= y - 16 / 64 < (dy + 1) / 64                         # y = (16 + dy) / 64


def test_placement_draws_follow_the_reference_formulas():
    """Over many draws on a 2:1 image with jitter .2, 64x64 net: new_ar = (100 + U(-20, 20)) /
    (50 + U(-10, 10)) lies in [80/60, 120/40], always above 1, so the image fills the width and
    nh = 64 / new_ar rows lie in [21.3, 48]; the top offset is uniform over [0, 64 - nh]."""
    im = np.full((3, 50, 100), .9, np.float32)
    heights, offsets = [], []
    for seed in range(300):
        sized, _ = place_detection(im, np.zeros((0, 5), np.float32), 64, 64, np.random.default_rng(seed),
                                   .2, 0, 1, 1, 30)
        rows = np.flatnonzero(np.abs(sized - .5).max(axis=(0, 2)) > 1e-6)
        cols = np.flatnonzero(np.abs(sized - .5).max(axis=(0, 1)) > 1e-6)
        assert len(cols) == 64                                                # the full width
        heights.append(len(rows))
        offsets.append(rows[0] / max(64 - len(rows), 1))
    assert 21 <= min(heights) and max(heights) <= 48
    assert np.quantile(heights, .1) < 30 and np.quantile(heights, .9) > 36     # spread over the range
    assert abs(np.mean(offsets) - .5) < .06 and min(offsets) < .1 and max(offsets) > .9


def test_flip_0_never_flips():
    im = np.zeros((3, 40, 40), np.float32)
    im[0, :, :10] = 1                               # red on the left
    boxes = np.array([[0, .125, .5, .25, 1]], np.float32)
    for seed in range(6):
        for augment in (place_detection, augment_detection):
            _, truth = augment(im, boxes, 40, 40, np.random.default_rng(seed), 0, 0, 1, 1, 30, False)
            assert truth[0, 0] < .5                 # still on the left


@pytest.mark.parametrize("seed", range(4))
def test_compiled_samples_are_the_reference_to_the_bit(seed):
    """data/compiled.py's kernels in both augmentations: the same draws give the same image and
    truth, bit for bit (grey, saturated and black pixels included, where the HSV code branches)."""
    from darknet_py.data import compiled
    rng = np.random.default_rng(seed)
    im = rng.random((3, 75, 100), dtype=np.float32)
    im[:, :8, :8] = .5
    im[0, 10:20, 10:20], im[1:, 10:20, 10:20] = 1, 0
    im[:, 30:33, 30:33] = 0
    boxes = np.array([[1, .5, .5, .3, .4], [2, .2, .3, .1, .1]], np.float32)
    for augment, kernels in ((place_detection, dict(place=compiled.place_image, distort=compiled.distort_image,
                                                    flip_image=compiled.flip_image)),
                             (augment_detection, dict(resize=compiled.resize_image, distort=compiled.distort_image,
                                                      flip_image=compiled.flip_image))):
        ref = augment(im, boxes, 96, 64, np.random.default_rng(seed), .3, .2, 1.5, 1.5, 30)
        fast = augment(im, boxes, 96, 64, np.random.default_rng(seed), .3, .2, 1.5, 1.5, 30, True, **kernels)
        assert np.array_equal(ref[0], fast[0]) and np.array_equal(ref[1], fast[1]), augment.__name__
