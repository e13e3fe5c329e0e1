"""detector train end to end on the synthetic shapes set: the loss falls, checkpoints follow
Darknet's schedule, a resumed run continues the schedule, Ctrl-C keeps a complete backup,
two gloo processes stay identical, bad samples are warned about and skipped."""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import MAXPOOL, REPO, conv

import darknet_py
from darknet_py.cli import main
from darknet_py.data.shapes_dataset import make as make_shapes

SMALL_CFG = """[net]
batch={batch}
subdivisions=1
width=64
height=64
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate={lr}
burn_in=0
max_batches=1000
policy=steps
steps=500,800
scales=.1,.1
{layers}
{head}[region]
anchors=1,1, 2,2
bias_match=1
classes=4
coords=4
num=2
softmax=1
jitter=.2
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
absolute=1
thresh=.6
random={random}
"""
BN_LAYERS = conv(8) + MAXPOOL + conv(16) + MAXPOOL + conv(16) + MAXPOOL
HEAD = conv(18, size=1, bn=False, activation="linear")

pytestmark = pytest.mark.slow       # every test here trains


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes(root, 48, 8, seed=3)
    return root


def write_cfg(path, batch=8, lr=0.01, random=0, layers=BN_LAYERS):
    path.write_text(SMALL_CFG.format(batch=batch, lr=lr, random=random, layers=layers, head=HEAD))
    return path


def iteration_lines(text):
    return [line for line in text.splitlines() if re.match(r"^\d+: ", line)]


def test_loss_falls_and_checkpoints(shapes, tmp_path, capsys, monkeypatch):
    cfg = write_cfg(tmp_path / "small.cfg")
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "train", str(shapes / "shapes.data"), str(cfg), "-max_batches", "40",
                 "-chart", "chart.png"]) == 0
    lines = iteration_lines(capsys.readouterr().out)
    assert len(lines) == 40
    first = re.match(r"^1: ([\d.]+), ([\d.]+) avg, ([\d.]+) rate, ([\d.]+) seconds, (\d+) images, "
                     r"([\d.]+) hours left$", lines[0])
    assert first and int(first.group(5)) == 8
    losses = [float(line.split()[1].rstrip(",")) for line in lines]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    backup = shapes / "backup"
    assert (backup / "small_final.weights").exists()
    assert (tmp_path / "chart.png").exists()
    final = darknet_py.load_network(cfg, backup / "small_final.weights")
    assert final.seen == 40 * 8


def test_checkpoint_schedule_and_resume(shapes, tmp_path, capsys):
    """Darknet saves NAME.backup every 100 iterations and NAME_N.weights at 100, 200...;
    a run resumed from a file continues seen, the learning rate and multi-scale sizes."""
    from darknet_py.train.trainer import checkpoint_due, multiscale_size
    assert [i for i in range(1, 1201) if checkpoint_due(i)] == list(range(100, 1000, 100))
    assert checkpoint_due(10000) and not checkpoint_due(1100)
    cfg = write_cfg(tmp_path / "resume.cfg", batch=4, random=1.4)    # AlexeyAB's range: 64..128
    data = str(shapes / "shapes.data")
    assert main(["detector", "train", data, str(cfg), "-max_batches", "24"]) == 0
    whole = capsys.readouterr().out
    (shapes / "backup" / "resume_final.weights").rename(tmp_path / "whole.weights")
    assert main(["detector", "train", data, str(cfg), "-max_batches", "12"]) == 0
    capsys.readouterr()
    assert main(["detector", "train", data, str(cfg), str(shapes / "backup" / "resume_final.weights"),
                 "-max_batches", "24"]) == 0
    resumed = capsys.readouterr().out
    def rate(text, n):
        return [line for line in iteration_lines(text) if line.startswith(f"{n}: ")][0].split(",")[2]
    assert iteration_lines(resumed)[0].startswith("13: ")
    assert rate(resumed, 13) == rate(whole, 13)
    def sizes(text):
        return re.findall(r"Resizing\n(\d+)", text)
    assert sizes(resumed) == sizes(whole)[-len(sizes(resumed)):]
    assert sizes(whole) == [str(multiscale_size(0, b, 64, 24, random=1.4)) for b in (0, 10, 20)]
    assert darknet_py.load_network(cfg, shapes / "backup" / "resume_final.weights").seen == 24 * 4


def test_interrupt_keeps_a_complete_backup(shapes, tmp_path):
    cfg = write_cfg(tmp_path / "stop.cfg", batch=4)
    proc = subprocess.Popen([sys.executable, "-m", "darknet_py", "detector", "train",
                             str(shapes / "shapes.data"), str(cfg), "-max_batches", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("3: "):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    backup = shapes / "backup" / "stop.backup"
    net = darknet_py.load_network(cfg, backup)          # complete: the size check passes
    assert net.seen >= 3 * 4
    assert not list((shapes / "backup").glob(".stop.backup.*")), "a temporary file was left"


def test_bad_samples_are_warned_and_skipped(shapes, tmp_path, capsys):
    images = [line for line in (shapes / "train.txt").read_text().splitlines()]
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    bad_label_image = tmp_path / "JPEGImages" / "bad.jpg"
    bad_label_image.parent.mkdir()
    bad_label_image.write_bytes((shapes / "JPEGImages" / "shapes_000000.jpg").read_bytes())
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "bad.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n")
    listing = tmp_path / "train.txt"
    paths = [str(tmp_path / "missing.jpg"), str(broken), str(bad_label_image)] + images[:6]
    listing.write_text("\n".join(paths) + "\n")
    data = tmp_path / "bad.data"
    data.write_text(f"classes=4\ntrain={listing}\nnames={shapes / 'shapes.names'}\nbackup={tmp_path / 'backup'}\n")
    cfg = write_cfg(tmp_path / "skip.cfg", batch=8)
    assert main(["detector", "train", str(data), str(cfg), "-max_batches", "4"]) == 0
    err = capsys.readouterr().err
    assert f"{listing}:1: " in err and "no such file" in err
    assert f"{listing}:2: " in err and "cannot decode image" in err
    assert f"{tmp_path / 'labels' / 'bad.txt'}:2: class 7 is out of range" in err
    assert (tmp_path / "backup" / "skip_final.weights").exists()


def test_two_gloo_processes_match_one_process(tmp_path):
    """Two processes of batch 4 stay identical and update as one process of batch 8 (no
    batch norm here: Darknet's multi-GPU batch norm, like this one's, is per process)."""
    pytest.importorskip("torch")
    from darknet_py.train.distributed import train_fixed_batches
    plain = BN_LAYERS.replace("batch_normalize=1\n", "")
    cfg4 = write_cfg(tmp_path / "four.cfg", batch=4, layers=plain)
    cfg8 = write_cfg(tmp_path / "eight.cfg", batch=8, layers=plain)
    weights = tmp_path / "start.weights"
    assert main(["init", str(cfg8), str(weights), "-seed", "5"]) == 0
    rng = np.random.default_rng(0)
    x = rng.random((8, 3, 64, 64), dtype=np.float32)
    truth = np.zeros((8, 30, 5), np.float32)
    truth[:, 0] = [.4, .5, .3, .3, 1]
    truth[::2, 1] = [.7, .3, .2, .4, 2]
    ranks = train_fixed_batches(cfg4, weights, x, truth, world=2, steps=3, out_dir=tmp_path)
    assert np.array_equal(ranks[0], ranks[1])
    single = darknet_py.load_network(cfg8, weights, backend="torch", device="cpu")
    for _ in range(3):
        single.train_step(x, truth, log=lambda line: None)
    start = darknet_py.load_network(cfg8, weights).params
    assert not np.allclose(ranks[0], start)
    np.testing.assert_allclose(ranks[0], single.params, rtol=1e-4, atol=1e-4 * np.abs(single.params).max())


def test_multi_gpu_training_passes_half_to_its_workers(monkeypatch):
    """-gpus 0,1 spawns one training process per device; each must get -half's precision."""
    mp = pytest.importorskip("torch.multiprocessing")
    spawned = {}
    monkeypatch.setattr(mp, "spawn", lambda fn, args, nprocs, join: spawned.update(args=args, nprocs=nprocs))
    assert main(["detector", "train", "voc.data", "yolov2-voc.cfg", "-gpus", "0,1", "-nogpu", "-half"]) == 0
    assert spawned["nprocs"] == 2 and "fp16" in spawned["args"]


def test_calc_anchors_output_pasted_into_a_cfg_trains(shapes, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "calc_anchors", str(shapes / "shapes.data"), "-num_of_clusters", "2",
                 "-width", "8", "-height", "8"]) == 0              # the 8x8 grid of the 64x64 cfg
    anchors = re.search(r"anchors = (.*)", capsys.readouterr().out).group(1)
    cfg = write_cfg(tmp_path / "anchored.cfg")
    cfg.write_text(cfg.read_text().replace("anchors=1,1, 2,2", f"anchors={anchors}"))
    assert darknet_py.load_network(cfg).output_layer.biases.tolist() != [1, 1, 2, 2]
    assert main(["detector", "train", str(shapes / "shapes.data"), str(cfg), "-max_batches", "25"]) == 0
    losses = [float(line.split()[1].rstrip(",")) for line in iteration_lines(capsys.readouterr().out)]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


def yolo_head(mask):
    """A 1x1 linear conv of 3 * (5 + 4) filters and a [yolo] head over 6 pixel anchors."""
    return (conv(27, size=1, bn=False, activation="linear") + f"[yolo]\nmask={mask}\n"
            "anchors=6,6, 10,10, 14,14, 20,20, 28,28, 40,40\nclasses=4\nnum=6\nignore_thresh=.7\n")


YOLO_CFG = ("[net]\nbatch=8\nsubdivisions=1\nwidth=64\nheight=64\nchannels=3\nmomentum=0.9\ndecay=0.0005\n"
            "learning_rate=0.001\nburn_in=0\nmax_batches=1000\npolicy=constant\n"
            + conv(8) + MAXPOOL + conv(16) + MAXPOOL + conv(16) + yolo_head("3,4,5")
            + "[route]\nlayers=-3\n" + conv(8, size=1) + "[upsample]\nstride=2\n[route]\nlayers=-1,-8\n"
            + conv(16) + yolo_head("0,1,2"))


def test_yolo_heads_train(shapes, tmp_path, capsys):
    """detector train on a two-head YOLOv3-style cfg (route, upsample): both heads print
    Darknet's 'Region N' lines, the loss falls, the weights are written."""
    cfg = tmp_path / "yolo.cfg"
    cfg.write_text(YOLO_CFG)
    assert main(["detector", "train", str(shapes / "shapes.data"), str(cfg), "-max_batches", "30",
                 "-backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert {line.split(" Avg")[0] for line in out.splitlines() if line.startswith("Region ")} == {"Region 6",
                                                                                                 "Region 13"}
    losses = [float(line.split()[1].rstrip(",")) for line in iteration_lines(out)]
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert darknet_py.load_network(cfg, shapes / "backup" / "yolo_final.weights").seen == 30 * 8


def test_worker_processes_train_as_threads_do(shapes, tmp_path, monkeypatch):
    """detector train -worker_processes: the samples are drawn as the threads draw them, so three
    batches give the weights, to the byte, that worker threads give."""
    cfg = write_cfg(tmp_path / "procs.cfg", batch=4)
    monkeypatch.chdir(tmp_path)
    written = []
    for flags in ([], ["-worker_processes"]):
        assert main(["detector", "train", str(shapes / "shapes.data"), str(cfg), "-max_batches", "3",
                     "-backend", "numpy", *flags]) == 0
        written.append((shapes / "backup" / "procs_final.weights").read_bytes())
    assert written[0] == written[1]


def test_yolo_multiscale_training_resizes_both_heads(shapes, tmp_path, capsys):
    """random=1 on the [yolo] heads: every 10 batches the net takes the rule's size, both heads
    follow (their grids), and training goes on at that size."""
    from darknet_py.train.trainer import multiscale_size
    cfg = tmp_path / "yolo_random.cfg"
    cfg.write_text(YOLO_CFG.replace("num=6\n", "num=6\nrandom=1.4\n").replace("batch=8", "batch=4"))
    assert main(["detector", "train", str(shapes / "shapes.data"), str(cfg), "-max_batches", "21"]) == 0
    out = capsys.readouterr().out
    sizes = [int(v) for v in re.findall(r"Resizing\n(\d+)", out)]
    # AlexeyAB's range (random=1.4) trains its last 100 batches at the largest size: 128 here
    assert sizes == [multiscale_size(0, b, 64, 21, random=1.4) for b in (0, 10, 20)] == [128, 128, 128]
    assert len(iteration_lines(out)) == 21
    net = darknet_py.load_network(cfg, shapes / "backup" / "yolo_random_final.weights")
    net.resize(sizes[-1], sizes[-1])
    heads = [layer for layer in net.layers if layer.kind == "yolo"]
    assert [h.out_shape[1] for h in heads] == [sizes[-1] // 4, sizes[-1] // 2]


def test_map_during_training(shapes, tmp_path, capsys, monkeypatch):
    """AlexeyAB's -map: at the last iteration (and every max(4 epochs, 100)) the validation mAP
    is printed and drawn on the chart, NAME_best.weights kept; the figure equals detector map
    on the weights of that iteration (the shipped shapes model, fine-tuned two iterations, so
    the figure is far from 0). The iteration line ends with the hours left."""
    text = (REPO / "cfg" / "yolov2-tiny-shapes.cfg").read_text()
    cfg = tmp_path / "tuned.cfg"
    cfg.write_text(text.replace("batch=32", "batch=8").replace("random=1.4", "random=0"))
    monkeypatch.chdir(tmp_path)
    data = str(shapes / "shapes.data")
    weights = REPO / "weights" / "yolov2-tiny-shapes.weights"
    start = darknet_py.load_network(cfg, weights).batch_num
    assert main(["detector", "train", data, str(cfg), str(weights), "-max_batches", str(start + 2), "-map",
                 "-chart", "chart.png", "-backend", "numpy"]) == 0
    captured = capsys.readouterr()
    lines = iteration_lines(captured.out)
    assert len(lines) == 2 and all(re.search(r", \d+\.\d{6} hours left$", line) for line in lines)
    during = re.findall(r"mean average precision \(mAP@0\.50\) = ([\d.]+)", captured.out)
    assert len(during) == 1 and float(during[0]) > .3 and "New best mAP@0.50" in captured.out
    assert "Saving weights to " in captured.err
    backup = shapes / "backup"
    assert (backup / "tuned_best.weights").exists() and (tmp_path / "chart.png").exists()
    assert main(["detector", "map", data, str(cfg), str(backup / "tuned_final.weights"), "-backend", "numpy"]) == 0
    after = re.findall(r"mean average precision \(mAP@0\.50\) = ([\d.]+)", capsys.readouterr().out)
    assert after == during


def test_torchrun_two_nodes_match_one_process(shapes, tmp_path):
    """detector train under torchrun, two "nodes" of one process each on this machine (gloo,
    env:// rendezvous): the ranks end with identical parameters (they check, rank 0 says so),
    only rank 0 writes weights, and those equal one process trained on the whole batch (both
    ranks' images: sample k of rank r is sample 4r + k of a batch of 8)."""
    pytest.importorskip("torch")
    import socket
    plain = BN_LAYERS.replace("batch_normalize=1\n", "")        # per-process batch norm differs, as in Darknet
    cfg4 = write_cfg(tmp_path / "ranked.cfg", batch=4, layers=plain)
    cfg8 = write_cfg(tmp_path / "whole.cfg", batch=8, layers=plain)
    weights = tmp_path / "start.weights"
    assert main(["init", str(cfg8), str(weights), "-seed", "5"]) == 0
    data = tmp_path / "ranked.data"
    data.write_text((shapes / "shapes.data").read_text().replace(str(shapes / "backup"), str(tmp_path / "backup")))
    (tmp_path / "backup").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    train = ["detector", "train", str(data), "CFG", str(weights), "-max_batches", "3", "-backend", "torch", "-nogpu",
             "-workers", "1"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--node_rank", str(rank), "--master_addr", "127.0.0.1", "--master_port", str(port),
                               "-m", "darknet_py", *[str(cfg4) if a == "CFG" else a for a in train]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "All 2 ranks hold identical parameters" in outputs[0][0]
    assert len(iteration_lines(outputs[0][0])) == 3 and not iteration_lines(outputs[1][0])   # rank 0 prints
    assert main([a if a != "CFG" else str(cfg8) for a in train]) == 0
    ranked = darknet_py.load_network(cfg4, tmp_path / "backup" / "ranked_final.weights").params
    whole = darknet_py.load_network(cfg8, tmp_path / "backup" / "whole_final.weights").params
    start = darknet_py.load_network(cfg8, weights).params
    assert not np.allclose(ranked, start)
    np.testing.assert_allclose(ranked, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())


def test_prefetch_depth_keeps_the_batches(shapes):
    """-prefetch N makes the next N batches in the background; each batch is the one a depth
    of 1 makes (draws are seeded by the batch), and a new size drops the ones made at the old."""
    from darknet_py.data.labels import read_list
    from darknet_py.data.loader import DetectionLoader
    head = darknet_py.load_network(write_cfg(shapes / "prefetch.cfg")).output_layer
    paths = read_list(shapes / "train.txt")
    loaders = [DetectionLoader(paths, "train.txt", head, .2, .1, 1.5, 1.5, workers=1, depth=depth) for depth in (1, 3)]
    try:
        for b in range(4):
            one, three = (loader.batch(b, 4, 64, 64) for loader in loaders)
            assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])
        assert sorted(key[0] for key in loaders[1].pending) == [4, 5, 6]
        loaders[1].batch(4, 4, 96, 96)                       # multi-scale changed the size
        assert {key[2] for key in loaders[1].pending} == {96}
    finally:
        for loader in loaders:
            loader.close()


def test_workers_write_the_batch_in_place(shapes):
    """The workers write each sample into its row of one batch, from the backend's host_buffer
    (pinned memory on CUDA), as they finish: the batch is the samples made one by one with the
    same seeds, for one worker thread and three, and two worker processes (through a batch file
    in shared memory, used again for the next batch of that size and removed at close)."""
    from darknet_py.data import worker_processes
    from darknet_py.data.labels import read_list
    from darknet_py.data.loader import DetectionLoader
    net = darknet_py.load_network(write_cfg(shapes / "inplace.cfg"))
    paths = read_list(shapes / "train.txt")
    given = []

    def allocate(shape):
        given.append(net.backend.host_buffer(shape))
        return given[-1]
    for workers, processes in ((1, False), (3, False), (2, True)):
        loader = DetectionLoader(paths, "train.txt", net.output_layer, .2, .1, 1.5, 1.5, workers=workers,
                                 allocate=allocate, processes=processes)
        try:
            for batch_num in (7, 8):
                x, truth = loader.draw(batch_num, 5, 64, 64)
                assert x is given[-1] and x.shape == (5, 3, 64, 64) and truth.shape == (5, 30, 5)
                seeds = np.random.SeedSequence([0, batch_num, 0]).spawn(5)
                for k, seed in enumerate(seeds):
                    one_x, one_truth = loader.sample(np.random.default_rng(seed), 64, 64)
                    assert np.array_equal(x[k], one_x) and np.array_equal(truth[k], one_truth)
            if processes:
                files = list(loader.pool.files)
                assert len(files) == 1 and os.path.exists(files[0])        # one file, used twice
        finally:
            loader.close()
        if processes:
            assert not os.path.exists(files[0])
    assert worker_processes.batch_folder(1 << 20) in (worker_processes.SHARED_MEMORY, None)


def test_a_worker_process_reports_as_a_thread_does(tmp_path, capfd):
    """A list of images none of which is usable: the worker processes warn about each bad label
    line (file and line) and the draw fails with the list's one-line error, as with threads."""
    from darknet_py.data.loader import DetectionLoader
    from darknet_py.errors import DarknetError
    head = darknet_py.load_network(write_cfg(tmp_path / "bad.cfg")).output_layer
    image = tmp_path / "images" / "a.jpg"
    image.parent.mkdir()
    from PIL import Image
    Image.new("RGB", (32, 32)).save(image)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2\n")
    loader = DetectionLoader([str(image)], tmp_path / "train.txt", head, .2, .1, 1.5, 1.5, workers=1,
                             processes=True)
    try:
        with pytest.raises(DarknetError, match="train.txt: no usable image found in 100 draws"):
            loader.draw(0, 2, 64, 64)
    finally:
        loader.close()
    assert "a.txt:1:" in capfd.readouterr().err


@pytest.mark.cuda
def test_host_buffers_are_pinned_on_cuda(shapes):
    """On CUDA the loader's batches live in page-locked memory, so the copy to the device does not
    block the host; a training step on such a batch equals one on ordinary memory."""
    import torch
    cfg = write_cfg(shapes / "pinned.cfg")
    nets = [darknet_py.load_network(cfg, backend="torch", device="cuda") for _ in range(2)]
    x = np.random.default_rng(0).random((nets[0].net.batch, 3, nets[0].height, nets[0].width), dtype=np.float32)
    pinned = nets[0].backend.host_buffer(x.shape)
    assert torch.from_numpy(pinned).is_pinned()
    pinned[:] = x
    truth = np.zeros((x.shape[0], 30, 5), np.float32)
    truth[:, 0] = [.5, .5, .2, .3, 1]
    losses = [net.train_step(batch, truth, log=lambda line: None) for net, batch in zip(nets, (pinned, x))]
    assert losses[0] == losses[1]
    for net in nets:
        net.backend.sync_params(net)
    assert np.array_equal(nets[0].params, nets[1].params)
