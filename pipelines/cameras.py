"""River cameras: each still is read by the ``camera/1`` model into a level and an overtopping flag.

The estimate is independent evidence beside the level gauge: a camera that sees
water over the banks raises its reach to level 5 (flooding occurring) even when
the gauge reads lower or has gone silent.

A frame is fetched from its ``image_uri`` (a ``file://`` URI or a path; the
storm library and field gateways store stills on shared disk). A frame that is
missing, unreadable or larger than :data:`MAX_FRAME_BYTES` becomes a dead
letter with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from pipelines.batching import BatchPerBundle
from pipelines.ordered import DEAD_LETTER
from suibou.catalogue import Camera, StationCatalogue
from suibou.contracts import CameraFrame, DeadLetter, local_path

#: Stills from river cameras are a few tens of kilobytes; anything far larger is not one.
MAX_FRAME_BYTES = 2 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CameraEstimate:
    """What one still shows about the river at one reach."""

    camera_id: str
    reach_id: str
    event_time: dt.datetime
    level_m: float
    p_overtopping: float
    overtopping: bool
    model: str
    exercise: bool
    drill_id: str | None


def fetch_frame(uri: str) -> bytes:
    """The bytes of a still at a ``file://`` URI or a local path.

    Raises:
        ValueError: Another scheme, a missing file or an oversized one.
    """
    path = local_path(uri, "image_uri")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FRAME_BYTES + 1)
    except OSError as error:
        raise ValueError(f"cannot read {uri}: {error.strerror or error}") from None
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"{uri} is larger than {MAX_FRAME_BYTES} bytes")
    return data


class _ReadFramesFn(BatchPerBundle):
    """One ``camera/1`` session per worker; each bundle's frames in one batch."""

    def __init__(self, catalogue: StationCatalogue):
        self._catalogue = catalogue
        self._read = Metrics.counter("cameras", "frames_read")

    def setup(self) -> None:
        from models import load_scorer

        self._scorer = load_scorer("camera", "1")
        cameras = getattr(self._catalogue, "cameras", ())
        self._cameras = {c.camera_id: c for c in cameras}

    def process(self, frame: CameraFrame, timestamp=beam.DoFn.TimestampParam,
                window=beam.DoFn.WindowParam) -> Iterator[object]:
        camera = self._cameras.get(frame.camera_id)
        problem = None
        if camera is None or camera.level_station_id is None:
            problem = f"camera {frame.camera_id!r} is not a catalogued camera watching a level gauge"
        else:
            try:
                data = fetch_frame(frame.image_uri)
            except ValueError as error:
                problem = str(error)
        if problem is not None:
            yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                reason=f"camera frame: {problem}", source_topic="", payload=frame.to_json().decode()[:2000],
                stage="cameras"))
            return
        self.add((frame, camera, data), timestamp, window)

    def score_batch(self, frames: Sequence[tuple[CameraFrame, Camera, bytes]]) -> list[CameraEstimate]:
        from models import read_frames

        # process() lets through only cameras that watch a level gauge.
        gauges = [self._catalogue.level_gauge(camera.level_station_id)  # type: ignore[arg-type]
                  for _, camera, _ in frames]
        readings = read_frames(self._scorer, [data for _, _, data in frames], gauges)
        self._read.inc(len(frames))
        return [
            CameraEstimate(
                camera_id=frame.camera_id, reach_id=camera.reach_id, event_time=frame.event_time,
                level_m=reading.level_m, p_overtopping=reading.p_overtopping, overtopping=reading.overtopping,
                model=reading.model, exercise=frame.exercise, drill_id=frame.drill_id,
            )
            for (frame, camera, _), reading in zip(frames, readings, strict=True)
        ]


@dataclasses.dataclass
class ReadRiverCameras(beam.PTransform):
    """Camera frames -> :class:`CameraEstimate` per reach, plus ``dead_letter``."""

    catalogue: StationCatalogue

    def __post_init__(self) -> None:
        super().__init__()

    def expand(self, frames: beam.PCollection[CameraFrame]) -> pvalue.DoOutputsTuple:
        return frames | "Read" >> beam.ParDo(_ReadFramesFn(self.catalogue)).with_outputs(DEAD_LETTER, main="out")


