"""Darknet's augmentation: HSV conversions, and labels that follow the crop, resize and flip."""
import numpy as np
import pytest

from darknet_py.data.augment import augment_detection, fill_truth, hsv_to_rgb, rgb_to_hsv
from darknet_py.data.labels import label_path


def test_hsv_round_trip():
    im = np.random.default_rng(0).random((3, 20, 30), dtype=np.float32)
    im[:, 0, 0] = .5                               # grey: no hue
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(im)), im, atol=2e-6)


@pytest.mark.parametrize("seed", range(6))
def test_labels_follow_the_image(seed):
    """A red box on black: after jitter crop, resize and flip its truth still sits on red."""
    im = np.zeros((3, 120, 160), np.float32)
    im[0, 30:70, 50:110] = 1                        # x 50..110, y 30..70
    boxes = np.array([[3, 80 / 160, 50 / 120, 60 / 160, 40 / 120]], np.float32)
    sized, truth = augment_detection(im, boxes, 64, 48, np.random.default_rng(seed), .2, 0, 1, 1, 30)
    assert sized.shape == (3, 48, 64)
    x, y, w, h, cls = truth[0]
    assert cls == 3 and 0 < w <= 1 and 0 < h <= 1 and not truth[1:].any()
    cx, cy = int(x * 64), int(y * 48)
    assert sized[0, cy, cx] > .9 and sized[1, cy, cx] < .1
    top, bottom = int((y - h / 2) * 48) + 1, int((y + h / 2) * 48) - 1
    inside = sized[0, top:bottom, int((x - w / 2) * 64) + 1:int((x + w / 2) * 64) - 1]
    assert inside.min() > .5                       # the whole truth box is red


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
