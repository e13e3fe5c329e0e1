"""detector demo: on a synthetic video of moving shapes (written losslessly, FFV1 in .mkv), each
frame's boxes (the JSON stream) and drawing (the -out_filename video, read back) equal detector
test's on that frame saved as PNG; -avgframes N equals demo.c's running mean computed here; the
MJPEG and JSON streams over HTTP; the page in a headless Chromium; image sequences; Ctrl-C and
a failing stream leave a playable video; bad input is one line and exit 2."""
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from helpers import REPO
from PIL import Image

import darknet_py
from darknet_py.cli import main
from darknet_py.data.image import letterbox_image, load_image, to_uint8
from darknet_py.data.shapes import background, star_points
from darknet_py.demo import DemoOptions, Sinks, run_demo
from darknet_py.detection.detector import detect, json_objects
from darknet_py.detection.draw import draw_detections
from darknet_py.detection.nms import do_nms_sort
from darknet_py.detection.region import get_region_detections
from darknet_py.streams import json_server, mjpeg_server
from darknet_py.video import ImageSequence, open_source

cv2 = pytest.importorskip("cv2", reason="the video tests need OpenCV (pip install 'darknet_py[video]')")

DATA = REPO / "cfg" / "shapes.data"
CFG = REPO / "cfg" / "yolov2-tiny-shapes.cfg"
WEIGHTS = REPO / "weights" / "yolov2-tiny-shapes.weights"
NAMES = ["circle", "square", "triangle", "star"]
FRAMES = 60
THRESH = .25


def moving_shapes(t, rng_seed=4):
    """Frame t of the synthetic video: a circle, a square and a star crossing a textured
    background (tools/make_shapes.py's)."""
    from PIL import ImageDraw
    im = background(np.random.default_rng(rng_seed), 320, 240)
    draw = ImageDraw.Draw(im)
    x = 50 + 3.5 * t
    draw.ellipse([x - 32, 40, x + 32, 104], fill=(210, 50, 40), outline=(45, 205, 215), width=2)
    draw.rectangle([260 - 2.5 * t - 28, 140, 260 - 2.5 * t + 28, 196], fill=(40, 60, 200), outline=(215, 195, 55))
    draw.polygon(star_points(160, 120 + 40 * np.sin(t / 9), 34), fill=(240, 220, 30), outline=(15, 35, 225))
    return np.asarray(im)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """The video (lossless) and each of its frames as a PNG."""
    root = tmp_path_factory.mktemp("video")
    frames = root / "frames"
    frames.mkdir()
    writer = cv2.VideoWriter(str(root / "moving.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), 25, (320, 240))
    assert writer.isOpened()
    for t in range(FRAMES):
        rgb = moving_shapes(t)
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        Image.fromarray(rgb).save(frames / f"frame_{t:05d}.png")
    writer.release()
    return root


@pytest.fixture(scope="module")
def net():
    """The NumPy reference: deterministic, so two runs agree to the bit (the Numba backend
    times its convolution algorithms per run, and two choices differ in the last bits)."""
    return darknet_py.load_network(CFG, WEIGHTS, backend="numpy")


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[:, :, ::-1])
    capture.release()
    return frames


class HeldSource:
    """A source that holds its first frame back until ``release`` (so the test's readers are
    connected before the stream starts), and ends early on ``end``."""

    def __init__(self, source):
        self.source, self.live, self.fps, self.name = source, False, source.fps, source.name
        self.released, self.ended = threading.Event(), threading.Event()

    def __iter__(self):
        self.released.wait(30)
        for frame in self.source:
            if self.ended.is_set():
                return
            yield frame

    def release(self):
        self.released.set()

    def end(self):
        self.ended.set()

    def close(self):
        self.source.close()


class RecordedFrames(Sinks):
    def __init__(self, **sinks):
        super().__init__(**sinks)
        self.frames = []

    def publish(self, image, frame):
        self.frames.append(frame)
        super().publish(image, frame)


def read_json_frames(response, count):
    """Parse AlexeyAB's JSON stream as it arrives: '[', then objects separated by ','."""
    decoder, text, frames = json.JSONDecoder(), "", []
    while len(frames) < count:
        chunk = response.read1(65536).decode()
        if not chunk:
            break
        text += chunk
        while True:
            stripped = text.lstrip("[,\n ")
            try:
                frame, end = decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                break
            frames.append(frame)
            text = stripped[end:]
    return frames


def read_mjpeg_frames(response, count):
    """(frame id, JPEG bytes) of the first ``count`` parts of a multipart MJPEG response."""
    parts = []
    while len(parts) < count:
        boundary = response.readline()
        if not boundary:
            break
        if not boundary.startswith(b"--"):
            continue
        headers = {}
        while (line := response.readline().strip()):
            key, value = line.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        parts.append((int(headers["x-frame-id"]), response.read(int(headers["content-length"]))))
    return parts


def test_demo_frames_equal_detector_test(video, net, tmp_path, capsys):
    """-avgframes 1: the JSON stream's objects and the drawn video, frame by frame, equal
    detector test on the PNG of that frame."""
    out = tmp_path / "out.mkv"
    source = HeldSource(open_source(str(video / "moving.mkv")))
    server = json_server(0)
    from darknet_py.video import VideoOutput
    sinks = RecordedFrames(video=VideoOutput(out, source.fps), json=server)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", run_demo(
        net, source, NAMES, DemoOptions(thresh=THRESH, avgframes=1), sinks, out=lambda *a: None)))
    thread.start()
    try:
        response = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=30)
        source.release()
        streamed = read_json_frames(response, FRAMES)
    finally:
        source.release()
        thread.join(60)
    assert result["summary"].frames == FRAMES
    assert [f["frame_id"] for f in streamed] == list(range(1, FRAMES + 1))
    assert streamed == sinks.frames

    # detector test on the PNG frames, through the command line, with its -json file
    capsys.readouterr()
    assert main(["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(video / "frames"), "-thresh", str(THRESH),
                 "-json", str(tmp_path / "test.json"), "-backend", "numpy"]) == 0
    tested = json.loads((tmp_path / "test.json").read_text())
    assert [f["objects"] for f in streamed] == [f["objects"] for f in tested]
    assert sum(len(f["objects"]) for f in tested) >= FRAMES            # the shapes are found

    drawn = read_video(out)
    assert len(drawn) == FRAMES
    for t in (0, 17, 41, FRAMES - 1):                    # what detector test draws on that frame
        image = load_image(video / "frames" / f"frame_{t:05d}.png")
        found = detect(net, image, THRESH, .5, .45)
        draw_detections(image, found.dets, found.order, THRESH, NAMES)
        np.testing.assert_array_equal(drawn[t], to_uint8(image), err_msg=f"frame {t}")


def test_avgframes_is_demo_c_running_mean(video, net):
    """-avgframes 3: each frame's boxes come from the mean of the last three frames' region
    outputs, three zeroed slots at the start (demo.c remember_network / avg_predictions)."""
    sinks = RecordedFrames()
    run_demo(net, open_source(str(video / "moving.mkv")), NAMES, DemoOptions(thresh=THRESH, avgframes=3), sinks,
             out=lambda *a: None)
    head = net.output_layer
    slots = [np.zeros((head.out_shape), np.float32) for _ in range(3)]
    for t in range(FRAMES):
        image = load_image(video / "frames" / f"frame_{t:05d}.png")
        slots[t % 3] = net.predict(letterbox_image(image, net.width, net.height)[None])[0]
        mean = np.zeros_like(slots[0])
        for slot in slots:                               # axpy_cpu(total, 1./demo_frame, slot, avg)
            mean += np.float32(1 / 3) * slot
        dets = get_region_detections(head, mean, 320, 240, net.width, net.height, THRESH)
        order = do_nms_sort(dets, .45)
        from darknet_py.detection.detector import Result
        assert sinks.frames[t]["objects"] == json_objects(Result(dets, order), NAMES, THRESH), f"frame {t}"


def test_mjpeg_and_json_streams(video, net, tmp_path):
    """An HTTP client reads JPEG frames and JSON frames: each JPEG is the drawn frame of the
    -out_filename video with its id, encoded at quality 80; each JSON frame that frame's detections."""
    from darknet_py.video import VideoOutput
    out = tmp_path / "out.mkv"
    source = HeldSource(open_source(str(video / "moving.mkv")))
    mjpeg, stream = mjpeg_server(0), json_server(0)
    sinks = RecordedFrames(video=VideoOutput(out, source.fps), mjpeg=mjpeg, json=stream)
    thread = threading.Thread(target=run_demo, args=(net, source, NAMES, DemoOptions(thresh=THRESH, avgframes=1),
                                                     sinks), kwargs={"out": lambda *a: None})
    thread.start()
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{mjpeg.port}/", timeout=30).read().decode()
        assert '<img id="stream" src="/stream.mjpg"' in page
        images = urllib.request.urlopen(f"http://127.0.0.1:{mjpeg.port}/stream.mjpg", timeout=30)
        assert images.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        objects = urllib.request.urlopen(f"http://127.0.0.1:{stream.port}/", timeout=30)
        source.release()
        parts = read_mjpeg_frames(images, 3)
        frames = read_json_frames(objects, 3)
    finally:
        source.release()
        thread.join(60)
    assert len(parts) == 3 and len(frames) == 3
    drawn = read_video(out)
    for frame_id, jpeg in parts:
        encoded = io.BytesIO()
        Image.fromarray(drawn[frame_id - 1]).save(encoded, format="JPEG", quality=80)
        assert jpeg == encoded.getvalue(), f"frame {frame_id}"
    for frame in frames:
        assert frame == sinks.frames[frame["frame_id"] - 1]


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_page_shows_the_stream_in_chromium(video, net, tmp_path):
    """The page at / in a headless Chromium: its image element has loaded frames of the
    stream (the page marks it with the frame it shows)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    frames = ImageSequence([str(p) for p in sorted((video / "frames").glob("*.png"))] * 20, "frames")
    source = HeldSource(frames)
    mjpeg = mjpeg_server(0)
    done = threading.Event()

    def slow_out(*args):
        time.sleep(.02)          # keep the stream going while the browser loads the page
    thread = threading.Thread(target=lambda: (run_demo(net, source, NAMES, DemoOptions(thresh=THRESH, avgframes=1),
                                                       Sinks(mjpeg=mjpeg), out=slow_out), done.set()))
    thread.start()
    source.release()
    try:
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000",
                              "--run-all-compositor-stages-before-draw", "--dump-dom",
                              f"http://127.0.0.1:{mjpeg.port}/"], capture_output=True, text=True, timeout=120).stdout
    finally:
        source.end()
        thread.join(120)
    assert 'id="stream"' in dom
    assert 'data-frames="' in dom, dom[:2000]


def test_image_sequence_pattern_and_a_corrupt_frame(video, tmp_path, capsys):
    """frame_%05d.png works without a video library; a frame that cannot be decoded is
    warned about with its number and skipped."""
    frames = tmp_path / "seq"
    shutil.copytree(video / "frames", frames)
    (frames / "frame_00007.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["detector", "demo", str(DATA), str(CFG), str(WEIGHTS), str(frames / "frame_%05d.png"),
                 "-thresh", str(THRESH), "-prefix", str(tmp_path / "shown"), "-backend", "numba"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("FPS:") == FRAMES - 1
    warnings = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(warnings) == 1 and "frame 7:" in warnings[0] and "frame_00007.png" in warnings[0]
    assert len(list(tmp_path.glob("shown_*.jpg"))) == FRAMES - 1
    assert (tmp_path / "shown_00000008.jpg").exists() and not (tmp_path / "shown_00000007.jpg").exists()
    assert "60 frames" not in captured.err and f"{FRAMES - 1} frames in" in captured.err


def test_ctrl_c_leaves_a_playable_video(video, tmp_path):
    """SIGINT mid-stream: exit 130, and the output is a whole video of the frames done."""
    long_list = tmp_path / "frames.txt"
    long_list.write_text("".join(f"{p}\n" for p in sorted((video / "frames").glob("*.png"))) * 50)
    out = tmp_path / "out.mkv"
    process = subprocess.Popen([sys.executable, "-m", "darknet_py", "detector", "demo", str(DATA), str(CFG),
                                str(WEIGHTS), str(long_list), "-out_filename", str(out), "-backend", "numba"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    seen = 0
    while seen < 20 and time.time() < deadline:
        line = process.stdout.readline()
        seen += line.startswith("FPS:")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err
    frames = read_video(out)
    assert 20 <= len(frames) < 50 * FRAMES
    assert not list(tmp_path.glob(".out.partial*"))


def test_a_failing_stream_leaves_the_frames_done(video, net, tmp_path):
    from darknet_py.errors import DarknetError
    from darknet_py.video import VideoOutput

    class Failing:
        live, fps, name = False, 25.0, "failing"

        def __iter__(self):
            for number, rgb in open_source(str(video / "moving.mkv")):
                if number == 12:
                    raise DarknetError("the stream broke", "failing")
                yield number, rgb

        def close(self):
            pass
    out = tmp_path / "out.mkv"
    with pytest.raises(DarknetError, match="the stream broke"):
        run_demo(net, Failing(), NAMES, DemoOptions(), Sinks(video=VideoOutput(out, 25)), out=lambda *a: None)
    assert len(read_video(out)) == 12


def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize("case", ["not a video", "no camera", "unknown container", "port in use", "no such file"])
def test_bad_input_is_one_line(video, tmp_path, capsys, case):
    argv = ["detector", "demo", str(DATA), str(CFG), str(WEIGHTS)]
    held = None
    if case == "not a video":
        fake = tmp_path / "fake.mp4"
        fake.write_text("not a video\n")
        argv.append(str(fake))
        expected = f"{fake}: cannot open video"
    elif case == "no camera":
        argv += ["-c", "57"]
        expected = "camera 57: cannot open camera"
    elif case == "unknown container":
        argv += [str(video / "moving.mkv"), "-out_filename", str(tmp_path / "out.webm")]
        expected = "cannot write '.webm' video"
    elif case == "port in use":
        held = busy_port()
        argv += [str(video / "moving.mkv"), "-mjpeg_port", str(held.getsockname()[1])]
        expected = f"-mjpeg_port port {held.getsockname()[1]}"
    else:
        argv.append(str(tmp_path / "missing.mp4"))
        expected = "no such video file"
    try:
        assert main(argv) == 2
    finally:
        if held is not None:
            held.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out.webm").exists()


def test_without_opencv_videos_say_how_to_install_and_sequences_work(video, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)          # as if opencv-python-headless were absent
    argv = ["detector", "demo", str(DATA), str(CFG), str(WEIGHTS)]
    assert main(argv + [str(video / "moving.mkv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["darknet_py: video files, cameras and -out_filename need OpenCV: pip install "
                   "'darknet_py[video]' (image sequences work without it)"]
    short = tmp_path / "short"
    short.mkdir()
    for t in range(3):
        shutil.copy(video / "frames" / f"frame_{t:05d}.png", short)
    # the short form, with the .data that fits the cfg (cfg/shapes.data)
    assert main(["demo", str(CFG), str(WEIGHTS), str(short), "-prefix", str(tmp_path / "shown")]) == 0
    assert len(list(tmp_path.glob("shown_*.jpg"))) == 3
