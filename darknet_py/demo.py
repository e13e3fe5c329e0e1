"""darknet_py detector demo (darknet: src/demo.c, with AlexeyAB's flags): YOLO on the frames of
a video, a camera or an image sequence.

Three threads, as demo.c has them: the next frame is read and letterboxed while the network
runs on the current one, and the one before is drawn, written and streamed; frames stay in
order. With ``-avgframes N`` the detection layers' outputs are averaged over the last N frames
before they are decoded (demo.c: remember_network, avg_predictions; the N slots start at zero).
Boxes are kept by the head's NMS at .45 (do_nms_sort, or AlexeyAB's diounms_sort for a [yolo]
nms_kind), as AlexeyAB's demo and ``detector test`` keep them (pjreddie's demo.c uses do_nms_obj
at .4), so one frame gives the boxes ``detector test`` gives on that frame saved as an image.
A file is read frame by frame, none dropped; a camera's frames are dropped, and counted, while
the network is busy."""
import collections
import io
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .data.compiled import letterbox_image
from .data.image import image_from_rgb, save_image, to_uint8
from .detection.detector import Result, decode_outputs, detection_layer, head_outputs, json_objects, nms_order
from .detection.draw import draw_and_describe

F = np.float32
WAIT = .1                    # seconds between checks of a stopped pipeline


@dataclass
class DemoOptions:
    thresh: float = .5
    hier_thresh: float = .5
    nms: float = .45
    avgframes: int = 3            # demo.c's demo_frame
    out_filename: str | None = None
    prefix: str | None = None
    ext_output: bool = False
    benchmark: bool = False       # the network and the decoding alone: nothing drawn or written


@dataclass
class DemoSummary:
    frames: int
    seconds: float
    network_seconds: float
    dropped: int

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0


class OutputAverage:
    """demo.c's running mean: the last N frames' head outputs, N zeroed slots at the start,
    averaged as avg += (1/N) * slot for each slot in turn (axpy_cpu, float)."""

    def __init__(self, frames):
        self.frames, self.index, self.slots = frames, 0, None

    def __call__(self, outputs):
        if self.frames == 1:            # 1.0 * x is x: nothing to keep or add
            return outputs
        if self.slots is None:
            self.slots = [[np.zeros_like(o) for o in outputs] for _ in range(self.frames)]
        self.slots[self.index] = [o.copy() for o in outputs]
        self.index = (self.index + 1) % self.frames
        weight = F(1. / self.frames)
        average = [np.zeros_like(o) for o in outputs]
        for slot in self.slots:
            for total, value in zip(average, slot):
                total += weight * value
        return average


class Pipeline:
    """The three stages and the queues between them. A source that fails ends the stream
    there (the frames read before are shown); a failure to show stops all three. Either is
    raised by ``run`` once everything is closed."""

    def __init__(self, net, source, names, options, sinks, out):
        self.net, self.source, self.names, self.o = net, source, names, options
        self.sinks, self.out = sinks, out
        self.frames = queue.Queue(maxsize=2)
        self.results = queue.Queue(maxsize=3)
        self.stop = threading.Event()
        self.errors = []
        self.dropped = self.shown = 0
        self.network_seconds = 0.0
        self.tty = sys.stdout.isatty()

    def put(self, q, item):
        while not self.stop.is_set():
            try:
                q.put(item, timeout=WAIT)
                return
            except queue.Full:
                continue

    def capture(self):
        """Read, convert and letterbox the next frame (demo.c fetch_in_thread; the letterbox
        compiled, without the GIL, to the reference's bit)."""
        try:
            for number, rgb in self.source:
                if self.stop.is_set():
                    break
                image = image_from_rgb(rgb)
                item = (number, image, letterbox_image(image, self.net.width, self.net.height))
                if not self.source.live:
                    self.put(self.frames, item)
                    continue
                while True:                 # a camera: the newest frame replaces a waiting one
                    try:
                        self.frames.put_nowait(item)
                        break
                    except queue.Full:
                        try:
                            self.frames.get_nowait()
                            self.dropped += 1
                        except queue.Empty:
                            pass
        except BaseException as err:      # the frames read so far are still shown, then it is raised
            self.errors.append(err)
        finally:
            self.put(self.frames, None)

    def detect(self):
        """The network on each frame in turn, on this thread (demo.c detect_in_thread)."""
        average = OutputAverage(self.o.avgframes)
        while not self.stop.is_set():
            try:
                item = self.frames.get(timeout=WAIT)
            except queue.Empty:
                continue
            if item is None:
                break
            number, image, sized = item
            start = time.perf_counter()
            outputs = average(head_outputs(self.net, sized[None])[0])
            dets = decode_outputs(self.net, outputs, image.shape[2], image.shape[1], self.o.thresh,
                                  self.o.hier_thresh, relative=True)
            order = nms_order(self.net, dets, self.o.nms)
            self.network_seconds += time.perf_counter() - start
            self.put(self.results, (number, image, Result(dets, order)))
        self.put(self.results, None)

    def show(self):
        """Print, draw, write and stream each result in order (demo.c display_in_thread)."""
        started = time.perf_counter()
        recent = collections.deque([started], maxlen=11)      # the FPS printed: over the last ten frames
        try:
            while True:
                try:
                    item = self.results.get(timeout=WAIT)
                except queue.Empty:
                    if self.stop.is_set():          # stopped, and every result taken
                        return
                    continue
                if item is None:
                    return
                number, image, result = item
                self.shown += 1
                now = time.perf_counter()
                recent.append(now)
                fps = (len(recent) - 1) / max(now - recent[0], 1e-9)
                self.present(number, image, result, fps, self.shown / max(now - started, 1e-9))
        except BaseException as err:
            self.errors.append(err)
            self.stop.set()

    def present(self, number, image, result, fps, mean_fps):
        frame = {"frame_id": self.shown, "objects": json_objects(result, self.names, self.o.thresh)}
        if self.o.benchmark:
            self.out(f"FPS:{fps:.1f} \t AVG_FPS:{mean_fps:.1f}")
            self.sinks.publish(None, frame)
            return
        lines = draw_and_describe(image, result, self.o.thresh, self.names, self.o.ext_output)
        clear = "\033[2J\033[1;1H" if self.tty else ""
        self.out(f"{clear}\nFPS:{fps:.1f}\nObjects:\n" + "".join("\n" + line for line in lines))
        if self.o.prefix:
            save_image(image, f"{self.o.prefix}_{number:08d}")
        self.sinks.publish(image, frame)

    def run(self):
        threads = [threading.Thread(target=self.capture, name="demo capture", daemon=True),
                   threading.Thread(target=self.show, name="demo output", daemon=True)]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        try:
            self.detect()
            threads[1].join()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
            self.source.close()
            self.sinks.close()
        if self.errors:
            raise self.errors[0]
        return DemoSummary(self.shown, time.perf_counter() - start, self.network_seconds, self.dropped)


class Sinks:
    """Where each annotated frame goes: the -out_filename video, the MJPEG and JSON streams."""

    def __init__(self, video=None, mjpeg=None, json=None):
        self.video, self.mjpeg, self.json = video, mjpeg, json

    def publish(self, image, frame):
        """One frame: the drawn image [3, H, W] (None with -benchmark) and its JSON object."""
        if image is not None and (self.video is not None or self.mjpeg is not None):
            rgb = to_uint8(image)                       # as save_image writes the drawing
            if self.video is not None:
                self.video.write(rgb)
            if self.mjpeg is not None:
                buffer = io.BytesIO()
                Image.fromarray(rgb).save(buffer, format="JPEG", quality=80)
                self.mjpeg.publish(buffer.getvalue(), frame)
        if self.json is not None:
            self.json.publish(None, frame)

    def close(self):
        for sink in (self.video, self.mjpeg, self.json):
            if sink is not None:
                sink.close()


def run_demo(net, source, names, options=None, sinks=None, out=print):
    """The demo over ``source`` (video.open_source's, or any object with ``__iter__`` giving
    (number, RGB uint8 frame), ``live``, ``fps``, ``close``); returns a DemoSummary."""
    pipeline = Pipeline(net, source, names, options or DemoOptions(), sinks or Sinks(), out)
    return pipeline.run()


def demo_detector(datacfg, cfg, weights, filename, camera, options, json_port=None, mjpeg_port=None,
                  backend=("numpy", None, "fp32"), out=print):
    """darknet detector demo: everything that can fail on the user's input (the source, the
    output name, the ports) is checked before the network loads."""
    from .data.datafile import DataConfig
    from .loading import load_verbose
    from .streams import json_server, mjpeg_server
    from .video import VideoOutput, open_source
    data = DataConfig(datacfg)
    data.names()                               # a missing names file fails before anything opens
    source = open_source(filename, camera)
    sinks = Sinks()
    try:
        out(f"video file: {filename}" if filename else f"camera {camera}")
        if options.out_filename and not options.benchmark:
            sinks.video = VideoOutput(options.out_filename, source.fps)
        if mjpeg_port is not None and not options.benchmark:
            sinks.mjpeg = mjpeg_server(mjpeg_port)
            out(f"MJPEG stream: http://127.0.0.1:{sinks.mjpeg.port}/")
        if json_port is not None:
            sinks.json = json_server(json_port)
            out(f"JSON stream: http://127.0.0.1:{sinks.json.port}/")
        net = load_verbose(cfg, weights, backend)
        names = data.names(detection_layer(net).classes)
    except BaseException:
        source.close()
        sinks.close()
        raise
    try:
        summary = run_demo(net, source, names, options, sinks, out)
    except KeyboardInterrupt:
        if sinks.video is not None:
            print(f"Wrote {options.out_filename} (interrupted)", file=sys.stderr)
        raise
    dropped = f", {summary.dropped} frames dropped" if source.live else ""
    print(f"{summary.frames} frames in {summary.seconds:.2f} s: {summary.fps:.1f} FPS (the network and "
          f"decoding alone: {summary.frames / max(summary.network_seconds, 1e-9):.1f} FPS){dropped}", file=sys.stderr)
    if sinks.video is not None and sinks.video.frames:
        print(f"Wrote {options.out_filename}", file=sys.stderr)
    return 0
