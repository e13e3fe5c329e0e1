"""detector valid / recall / map / calc_anchors and batch detector test, end to end on a
small synthetic set, plus their bad inputs."""
import json
import re

import numpy as np
import pytest
from helpers import REPO

from darknet_py.cli import main
from darknet_py.data.shapes_dataset import make as make_shapes
from darknet_py.evaluate.anchors import kmeans_anchors
from darknet_py.evaluate.validate import printed_corners

CFG = REPO / "cfg" / "yolov2-tiny-shapes.cfg"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    make_shapes(root, 12, 5, seed=4)
    weights = root / "untrained.weights"
    assert main(["init", str(CFG), str(weights), "-seed", "1"]) == 0
    return root, weights


def test_valid_writes_voc_files_the_devkit_reads(mini, tmp_path, monkeypatch):
    root, weights = mini
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "valid", str(root / "shapes.data"), str(CFG), str(weights)]) == 0
    names = (root / "shapes.names").read_text().split()
    valid_ids = {p.split("/")[-1][:-4] for p in (root / "valid.txt").read_text().split()}
    total = 0
    for name in names:
        lines = (tmp_path / "results" / f"comp4_det_test_{name}.txt").read_text().splitlines()
        for line in lines:                  # the devkit's reader: id, confidence, x1 y1 x2 y2
            image_id, conf, x1, y1, x2, y2 = line.split()
            assert image_id in valid_ids
            assert 0.005 < float(conf) <= 1 and float(x1) >= 1 and float(y1) >= 1   # darknet clamps these two
        total += len(lines)
    assert total > 0


def test_valid_coco_json_loads_in_pycocotools(mini, tmp_path, monkeypatch):
    from pycocotools.coco import COCO
    root, weights = mini
    data = tmp_path / "coco.data"
    data.write_text((root / "shapes.data").read_text() + "eval=coco\n")
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "valid", str(data), str(CFG), str(weights)]) == 0
    results = json.loads((tmp_path / "results" / "coco_results.json").read_text())
    assert results and set(results[0]) == {"image_id", "category_id", "bbox", "score"}
    coco = COCO()
    coco.dataset = {"images": [{"id": r["image_id"]} for r in results], "categories": [{"id": c} for c in range(4)],
                    "annotations": []}
    coco.createIndex()
    assert len(coco.loadRes(results).anns) == len(results)


def test_recall_and_map_report(mini, capsys):
    root, weights = mini
    assert main(["detector", "recall", str(root / "shapes.data"), str(CFG), str(weights)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.match(r"^\s+4\s+\d+\s+\d+\tRPs/Img: [\d.]+\tIOU: [\d.]+%\tRecall:[\d.]+%$", lines[-1])
    # the shipped model, trained on this generator's scenes, must find them (74 % mAP on its
    # own 200-image validation split; untrained weights would give about 0)
    trained = REPO / "weights" / "yolov2-tiny-shapes.weights"
    assert main(["detector", "map", str(root / "shapes.data"), str(CFG), str(trained), "-points", "11"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"class_id = 0, name = circle, ap = [\d.]+%", out)
    found = re.search(r"mean average precision \(mAP@0.50\) = ([\d.]+), or [\d.]+ %", out)
    assert found and float(found.group(1)) > .3, out
    assert "used 11 Recall-points" in out


def test_map_in_batches_equals_one_at_a_time(mini, capsys):
    """-batch N runs N validation images per network pass; the reference backend is
    batch-invariant bit for bit, so the whole report must be identical."""
    root, _ = mini
    trained = REPO / "weights" / "yolov2-tiny-shapes.weights"
    reports = []
    for batch in ("1", "3"):
        assert main(["detector", "map", str(root / "shapes.data"), str(CFG), str(trained),
                     "-backend", "numpy", "-batch", batch]) == 0
        reports.append(capsys.readouterr().out)
    assert "ap = " in reports[0] and reports[0] == reports[1]


def test_valid_prints_corners_as_floats():
    """print_detector_detections works each corner in double and stores it in a float before
    printf: x 127.9 (a float), w 0 gives xmin 128.899994, where the double would print 128.900002."""
    box = np.array([[127.9, 50.0, 0.0, 400.0]], np.float32)
    corners = printed_corners(box, 500, 375, one=1)
    assert [f"{v:f}" for v in corners[0].tolist()] == ["128.899994", "1.000000", "128.899994", "251.000000"]
    assert f"{float(box[0, 0]) + 1:f}" == "128.900002"


def test_valid_stops_at_an_unreadable_image(mini, tmp_path, capsys, monkeypatch):
    """An image the reader threads cannot decode ends detector valid with one line naming it,
    and no results file is written."""
    root, weights = mini
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths = (root / "valid.txt").read_text().split()
    listing = tmp_path / "valid.txt"
    listing.write_text("\n".join(paths[:2] + [str(broken)] + paths[2:]) + "\n")
    data = tmp_path / "broken.data"
    data.write_text(f"classes=4\nvalid={listing}\nnames={root / 'shapes.names'}\n")
    capsys.readouterr()
    assert main(["detector", "valid", str(data), str(CFG), str(weights), "-batch", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert str(broken) in err[-1] and not any("Traceback" in line for line in err)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_batch_detector_test_on_folder_and_list(mini, tmp_path, capsys, monkeypatch):
    root, weights = mini
    monkeypatch.chdir(tmp_path)
    listing = root / "valid.txt"
    assert main(["detector", "test", str(root / "shapes.data"), str(CFG), str(weights), str(listing),
                 "-thresh", ".05", "-dont_show", "-ext_output", "-json", "all.json", "-out", "drawn"]) == 0
    out = capsys.readouterr().out
    assert out.count("Predicted in") == 5
    assert re.search(r"\t\(left_x: +-?\d+   top_y: +-?\d+   width: +\d+   height: +\d+\)", out)
    frames = json.loads((tmp_path / "all.json").read_text())
    assert [f["frame_id"] for f in frames] == [1, 2, 3, 4, 5]
    assert len(list((tmp_path / "drawn").glob("*.jpg"))) == 5
    assert not (tmp_path / "predictions.jpg").exists()
    assert main(["detector", "test", str(root / "shapes.data"), str(CFG), str(weights),
                 str(root / "JPEGImages"), "-json", "dir.json"]) == 0
    assert len(json.loads((tmp_path / "dir.json").read_text())) == 17


def test_calc_anchors_recovers_known_centroids(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    centres = np.array([[.1, .15], [.3, .2], [.25, .5], [.6, .45], [.8, .85]])
    boxes = np.concatenate([c * rng.uniform(.97, 1.03, (200, 2)) for c in centres])
    found, avg_iou = kmeans_anchors(boxes, 5, seed=1)
    np.testing.assert_allclose(found, centres, rtol=.02)
    assert avg_iou > .95
    # through the CLI: labels of a synthetic list; output ready to paste into a cfg
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    paths = []
    for k, (w, h) in enumerate(boxes):
        (labels / f"{k}.txt").write_text(f"0 0.5 0.5 {w:.6f} {h:.6f}\n")
        paths.append(str(images / f"{k}.jpg"))
    (tmp_path / "train.txt").write_text("\n".join(paths) + "\n")
    data = tmp_path / "a.data"
    data.write_text(f"classes=1\ntrain={tmp_path / 'train.txt'}\n")
    monkeypatch.chdir(tmp_path)
    for size, form in ((416, r"^(\s*\d+,\s*\d+(, )?){5}$"), (13, r"^(\d+\.\d{4},\d+\.\d{4}(, )?){5}$")):
        # AlexeyAB's units: pixels of a 416 [yolo] net (printed as integers), cells of a 13x13 grid
        assert main(["detector", "calc_anchors", str(data), "-num_of_clusters", "5", "-width", str(size),
                     "-height", str(size), "-show"]) == 0
        out = capsys.readouterr().out
        printed = re.search(r"anchors = (.*)", out).group(1)
        assert re.match(form, printed) and (tmp_path / "anchors.txt").read_text() == printed
        anchors = [float(v) for v in printed.replace(",", " ").split()]
        np.testing.assert_allclose(np.array(anchors).reshape(5, 2), centres * size, rtol=.02)
        assert re.search(r"avg IoU = 9\d\.\d\d %", out)
        assert (tmp_path / "counters_per_class.txt").read_text() == f"counters_per_class = {len(boxes)}"


@pytest.mark.parametrize("problem", ["no valid list", "empty list", "bad label"])
def test_evaluation_bad_input(mini, tmp_path, capsys, monkeypatch, problem):
    root, weights = mini
    monkeypatch.chdir(tmp_path)
    listing = tmp_path / "valid.txt"
    if problem == "empty list":
        listing.write_text("\n")
    elif problem == "bad label":
        (tmp_path / "JPEGImages").mkdir()
        (tmp_path / "labels").mkdir()
        image = tmp_path / "JPEGImages" / "x.jpg"
        image.write_bytes((root / "JPEGImages" / "shapes_000000.jpg").read_bytes())
        (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5\n")
        listing.write_text(f"{image}\n")
    data = tmp_path / "bad.data"
    data.write_text(f"classes=4\nvalid={listing if problem != 'no valid list' else tmp_path / 'none.txt'}\n"
                    f"names={root / 'shapes.names'}\n")
    capsys.readouterr()
    rc = main(["detector", "map", str(data), str(CFG), str(weights)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    expected = {"no valid list": f"{data}:2: valid file", "empty list": f"{listing}: list file names no images",
                "bad label": "x.txt:1: malformed label line"}[problem]
    assert expected in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "results").exists()
