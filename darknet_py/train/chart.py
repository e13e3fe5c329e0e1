"""-chart FILE: the training loss over iterations as a PNG, and with -map the validation mAP on
its own axis (AlexeyAB's chart), redrawn as training goes."""
from pathlib import Path

import numpy as np

from ..files import atomic_write


class Chart:
    def __init__(self, path):
        self.path, self.points, self.maps = Path(path), [], []

    def add(self, i, loss, avg):
        self.points.append((i, loss, avg))
        if len(self.points) % 10 == 1:
            self.draw()

    def add_map(self, i, value):
        """mAP@0.5 (0..1) at iteration i."""
        self.maps.append((i, value))
        self.draw()

    def draw(self):
        from PIL import Image, ImageDraw
        w, h, pad = 640, 360, 40
        im = Image.new("RGB", (w, h), "white")
        d = ImageDraw.Draw(im)
        d.rectangle([pad, pad, w - pad, h - pad], outline="black")
        pts = np.array(self.points, dtype=float)
        x0, x1 = pts[0, 0], max(pts[-1, 0], pts[0, 0] + 1)
        top = max(np.percentile(pts[:, 1], 95), pts[:, 2].max(), 1e-6)

        def sx(v):
            return pad + (v - x0) / (x1 - x0) * (w - 2 * pad)

        def sy(v, scale):
            return h - pad - min(v, scale) / scale * (h - 2 * pad)
        for col, color in ((1, (160, 160, 255)), (2, (200, 0, 0))):
            d.line([(sx(p[0]), sy(p[col], top)) for p in pts], fill=color, width=1 if col == 1 else 2)
        title = f"loss (blue), avg loss (red); axis top {top:.3g}"
        if self.maps:
            marks = [(sx(i), sy(value, 1)) for i, value in self.maps]
            if len(marks) > 1:
                d.line(marks, fill=(0, 150, 0), width=2)
            for (x, y), (_, value) in zip(marks, self.maps):
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(0, 150, 0))
                d.text((x - 14, y - 16), f"{value * 100:.1f}%", fill=(0, 110, 0))
            d.text((w - pad + 4, pad - 6), "100%", fill=(0, 110, 0))
            title += f"; mAP@0.5 (green, right axis), last {self.maps[-1][1] * 100:.2f}%"
        d.text((pad, h - pad + 8), f"iteration {int(x0)} .. {int(pts[-1, 0])}", fill="black")
        d.text((pad, pad // 2 - 6), title, fill="black")
        atomic_write(self.path, lambda f: im.save(f, format="PNG"))
