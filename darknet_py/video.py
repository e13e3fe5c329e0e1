"""Frames in and out for ``detector demo``: video files and cameras through OpenCV (the optional
``[video]`` extra, imported only when a video is opened), image sequences without it (a printf
pattern like ``frame_%05d.png``, a folder, a list); the annotated video written under a
temporary name and renamed when it is closed, so a file of that name is always a whole video."""
import os
from pathlib import Path

import numpy as np

from .data.image import load_rgb
from .data.sources import IMAGE_SUFFIXES, image_sources
from .errors import DarknetError, warn
from .files import check_writable

# the container an output name asks for, and the codec written into it (.mkv is lossless)
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}
SEQUENCE_FPS = 25.0          # image sequences have no frame rate of their own
BAD_FRAMES = 25              # consecutive undecodable video frames taken for the end of the stream


def opencv():
    try:
        import cv2
    except ImportError:
        raise DarknetError("video files, cameras and -out_filename need OpenCV: pip install 'darknet_py[video]' "
                           "(image sequences work without it)") from None
    return cv2


class ImageSequence:
    """Frames from image files, in order; one that cannot be read is warned about (with its
    frame number) and skipped."""
    live = False

    def __init__(self, paths, name):
        self.paths, self.name, self.fps = list(paths), name, SEQUENCE_FPS

    def __iter__(self):
        for number, path in enumerate(self.paths):
            try:
                yield number, load_rgb(path)
            except DarknetError as err:
                warn(f"darknet_py: frame {number}: {err}; skipped")

    def close(self):
        pass


class VideoCapture:
    """Frames from a video file or a camera through OpenCV, as RGB."""

    def __init__(self, what, name, live):
        cv2 = opencv()
        self.cv2, self.name, self.live = cv2, name, live
        self.capture = cv2.VideoCapture(what)
        if not self.capture.isOpened():
            kind = "camera" if live else "video (not a video, or a codec OpenCV lacks)"
            raise DarknetError(f"cannot open {kind}", name)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or SEQUENCE_FPS
        self.frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def __iter__(self):
        number, failures = 0, 0
        while True:
            ok, frame = self.capture.read()
            if ok:
                failures = 0
                yield number, frame[:, :, ::-1]
            elif self.live or number >= self.frames - 1 or failures >= BAD_FRAMES:
                return
            else:                         # a frame the decoder could not read, before the end
                failures += 1
                warn(f"darknet_py: {self.name}: frame {number} could not be decoded; skipped")
            number += 1

    def close(self):
        self.capture.release()


def open_source(filename=None, camera=None):
    """The frames of ``filename`` (a video, an image, a folder or list of images, or a printf
    pattern of numbered images), or of camera number ``camera``."""
    if camera is not None:
        return VideoCapture(camera, f"camera {camera}", live=True)
    path = Path(filename)
    if "%" in path.name:
        number = 0 if Path(str(path) % 0).is_file() else 1
        paths = []
        while Path(str(path) % number).is_file():
            paths.append(str(path) % number)
            number += 1
        if not paths:
            raise DarknetError("no image matches the pattern (frames are numbered from 0 or 1)", filename)
        return ImageSequence(paths, filename)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES + (".txt",):
        return ImageSequence(image_sources(filename), filename)
    if not path.is_file():
        raise DarknetError("no such video file", filename)
    return VideoCapture(str(path), filename, live=False)


class VideoOutput:
    """-out_filename: frames written to a hidden partial file beside ``path``, renamed to
    ``path`` when closed (on the end of the stream, Ctrl-C or an error alike)."""

    def __init__(self, path, fps):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise DarknetError(f"cannot write '{suffix}' video: name the output .mp4, .avi or .mkv (lossless)",
                               path)
        check_writable(self.path)
        self.fourcc, self.fps = FOURCC[suffix], fps
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.writer = None
        self.frames = 0

    def write(self, rgb):
        if self.writer is None:
            cv2 = opencv()
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self.writer.isOpened():
                self.writer = None
                self.partial.unlink(missing_ok=True)
                raise DarknetError(f"OpenCV cannot encode {self.fourcc} video here", self.path)
        self.writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def close(self):
        """Finish the file; a stream that ended before its first frame leaves no file."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.partial, self.path)
