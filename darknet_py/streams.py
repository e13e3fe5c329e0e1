"""The demo's live view on 127.0.0.1, on the standard library's threading HTTP server:
``-mjpeg_port`` serves the annotated frames as ``multipart/x-mixed-replace`` MJPEG at
``/stream.mjpg``, a page at ``/`` that shows them with the current frame's detections, and
those detections at ``/detections.json``; ``-json_port`` streams AlexeyAB's per-frame JSON
(one object per frame, ``frame_id`` and ``objects``, in a JSON array that grows)."""
import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import DarknetError

BOUNDARY = "darknet_py_frame"
JSON_HISTORY = 256           # frames the JSON stream keeps for a reader that fell behind
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>darknet_py demo</title>
<style>body{font-family:sans-serif;margin:1em;background:#222;color:#eee}img{max-width:100%}</style></head>
<body><h1>darknet_py demo</h1>
<img id="stream" src="/stream.mjpg" alt="the annotated video">
<p>Frame <span id="frame">-</span></p><pre id="objects"></pre>
<script>
const img = document.getElementById("stream");
img.addEventListener("load", () => { img.dataset.loaded = "1"; });
async function poll() {
  try {
    const frame = await (await fetch("/detections.json", {cache: "no-store"})).json();
    document.getElementById("frame").textContent = frame.frame_id;
    document.getElementById("objects").textContent = frame.objects.map(
      o => `${o.name}: ${Math.round(o.confidence * 100)}%`).join("\\n");
    if (img.naturalWidth > 0) { img.dataset.frames = String(frame.frame_id); }
  } catch (err) {}
  setTimeout(poll, 200);
}
poll();
</script></body></html>
"""


class Latest:
    """The newest frames' payloads (JPEG bytes, JSON object), numbered from 1. A reader asks for
    the first frame after the one it last sent: the MJPEG view keeps one frame, so a slow
    viewer skips to the newest; the JSON stream keeps ``history`` frames, so a reader that
    keeps up gets every frame."""

    def __init__(self, history=1):
        self.condition = threading.Condition()
        self.frames = collections.deque(maxlen=history)
        self.number = 0
        self.closed = False

    def publish(self, jpeg, frame):
        with self.condition:
            self.number += 1
            self.frames.append((self.number, jpeg, frame))
            self.condition.notify_all()

    @property
    def newest(self):
        with self.condition:
            return self.frames[-1] if self.frames else None

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()

    def after(self, number):
        """(number, jpeg, frame) of the first kept frame after ``number``; None once closed
        with nothing newer."""
        with self.condition:
            self.condition.wait_for(lambda: self.number > number or self.closed)
            return next((item for item in self.frames if item[0] > number), None)


def _handler(latest, routes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"       # each response ends when the connection closes

        def do_GET(self):
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            try:
                route(self, latest)
            except (BrokenPipeError, ConnectionResetError):
                pass                         # the viewer went away

        def log_message(self, *args):
            pass
    return Handler


def _headers(handler, content_type, length=None):
    """A 200 response's headers; a stream (no length) is not cached."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Cache-Control", "no-cache")
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _page(handler, latest):
    body = PAGE.encode()
    _headers(handler, "text/html; charset=utf-8", len(body))
    handler.wfile.write(body)


def _mjpeg(handler, latest):
    _headers(handler, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    number = max(latest.number - 1, 0)      # start with the frame on show
    while (item := latest.after(number)) is not None:
        number, jpeg, frame = item
        handler.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                            f"X-Frame-Id: {frame['frame_id']}\r\n\r\n".encode() + jpeg + b"\r\n")
        handler.wfile.flush()


def _detections(handler, latest):
    newest = latest.newest
    body = json.dumps(newest[2] if newest else {"frame_id": 0, "objects": []}).encode()
    _headers(handler, "application/json", len(body))
    handler.wfile.write(body)


def _json_stream(handler, latest):
    """AlexeyAB's -json_port: '[' then one object a frame, separated by ',', as frames come."""
    _headers(handler, "application/json")
    handler.wfile.write(b"[\n")
    number, first = max(latest.number - 1, 0), True
    while (item := latest.after(number)) is not None:
        number, _, frame = item
        handler.wfile.write((b"" if first else b",\n") + json.dumps(frame, indent=1).encode())
        handler.wfile.flush()
        first = False
    handler.wfile.write(b"\n]\n")


class LiveServer:
    """One port's server on its own daemon thread; ``close`` ends every open stream."""

    def __init__(self, port, routes, what, history=1):
        self.latest = Latest(history)
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.latest, routes))
        except OSError as err:
            raise DarknetError(f"{what} port {port}: {err.strerror or err} (in use?)") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"{what} server", daemon=True)
        self.thread.start()

    def publish(self, jpeg, frame):
        self.latest.publish(jpeg, frame)

    def close(self):
        self.latest.close()
        self.server.shutdown()
        self.server.server_close()


def mjpeg_server(port):
    return LiveServer(port, {"/": _page, "/stream.mjpg": _mjpeg, "/detections.json": _detections}, "-mjpeg_port")


def json_server(port):
    return LiveServer(port, {"/": _json_stream}, "-json_port", history=JSON_HISTORY)
