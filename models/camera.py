"""The camera model's input, shared by training and serving, and reading a frame with it.

Preprocessing (:func:`camera_input`): decode (JPEG/PNG bytes or a PIL image),
convert to 8-bit grayscale (ITU-R 601 luma, PIL's ``"L"``), resize to
:data:`CAMERA_SIZE` = 32 × 24 pixels with PIL's box filter (each output pixel
is the mean of the input pixels it covers), scale to [0, 1] and flatten row by
row: 768 float32 values, named ``px_RR_CC`` (row, column) in
:data:`CAMERA_FEATURES`.

``camera/1`` outputs, for each frame:

* ``level_ratio``: the water level as a share of the gauge's bank-full level
  (the picture shows the level *relative to the banks*; metres need the gauge's
  bank-full level, which :func:`read_frame` takes from the catalogue);
* ``probabilities[:, 1]``: the probability that the river is overtopping
  (level at or above bank-full).

Examples:
    >>> from PIL import Image
    >>> x = camera_input(Image.new("RGB", (160, 120), (255, 255, 255)))
    >>> x.shape, x.dtype, float(x.min()), float(x.max())
    ((768,), dtype('float32'), 1.0, 1.0)
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from suibou.catalogue import LevelGauge
    from suibou.contracts import AlertLevel

#: Model input size (width, height) in pixels.
CAMERA_SIZE: tuple[int, int] = (32, 24)
CAMERA_FEATURES: tuple[str, ...] = tuple(
    f"px_{r:02d}_{c:02d}" for r in range(CAMERA_SIZE[1]) for c in range(CAMERA_SIZE[0])
)
CAMERA_TARGETS: tuple[str, ...] = ("level_ratio", "overtopping")
CAMERA_TARGET = "water level as a share of bank-full, and overtopping (level >= bank-full), from a camera still"


def _image(frame: Any) -> Any:
    from PIL import Image

    if isinstance(frame, (bytes, bytearray, memoryview)):
        frame = Image.open(io.BytesIO(bytes(frame)))
    if not isinstance(frame, Image.Image):
        raise TypeError(f"expected image bytes or a PIL image, got {type(frame).__name__}")
    return frame


def camera_input(frame: Any) -> np.ndarray:
    """One frame (JPEG/PNG bytes or PIL image) -> float32 (768,) in [0, 1]."""
    from PIL import Image

    image = _image(frame).convert("L").resize(CAMERA_SIZE, Image.Resampling.BOX)
    return (np.asarray(image, dtype=np.float32) / np.float32(255.0)).reshape(-1)


def camera_inputs(frames: Sequence[Any]) -> np.ndarray:
    """Many frames -> float32 (n, 768), ready for one batched ONNX call."""
    if not frames:
        return np.zeros((0, len(CAMERA_FEATURES)), dtype=np.float32)
    return np.stack([camera_input(f) for f in frames])


@dataclasses.dataclass(frozen=True)
class CameraReading:
    """What ``camera/1`` reads from one frame at one gauge.

    Attributes:
        level_ratio: Estimated level / bank-full level.
        level_m: ``level_ratio × bank_full_m`` (metres above the gauge datum).
        stage: The alert level that estimate implies by the gauge's thresholds.
        p_overtopping: Probability that the river is at or above bank-full.
        overtopping: ``p_overtopping >= 0.5``.
        model: ``camera/1``.
    """

    level_ratio: float
    level_m: float
    stage: AlertLevel
    p_overtopping: float
    overtopping: bool
    model: str


def read_frames(scorer: Any, frames: Sequence[Any], gauges: Sequence[LevelGauge]) -> list[CameraReading]:
    """Reads many frames (each with the gauge its camera watches) in one batched call.

    Args:
        scorer: ``models.load_scorer("camera", "1")``.
        frames: JPEG/PNG bytes or PIL images.
        gauges: The level gauge each frame's camera looks at (same length).
    """
    from suibou.catalogue import level_for

    if len(frames) != len(gauges):
        raise ValueError("one gauge per frame")
    x = camera_inputs(frames)
    ratio, p_over = scorer.predict_camera(x)
    out = []
    for r, p, gauge in zip(ratio.tolist(), p_over.tolist(), gauges):
        level = r * gauge.bank_full_m
        out.append(CameraReading(level_ratio=round(r, 4), level_m=round(level, 3), stage=level_for(gauge, level),
                                 p_overtopping=round(p, 4), overtopping=p >= 0.5, model=scorer.model_ref))
    return out


def read_frame(scorer: Any, frame: Any, gauge: LevelGauge) -> CameraReading:
    """:func:`read_frames` for one frame."""
    return read_frames(scorer, [frame], [gauge])[0]
