"""Synthetic river-camera frames (河川監視カメラ) rendered from a water level.

Everything drawn here is **synthetic**: a simple, deterministic picture of a
river channel seen across the water, legible in the way a duty officer reads a
real camera still:

* an overlay strip at the top with the camera id and the time (JST), as real
  river cameras stamp their stills;
* sky and a skyline, darker at night (by the JST hour of ``when``), with a lamp
  lighting the staff gauge after dark;
* two embankments whose crowns are the gauge's bank-full level, and the
  channel bed at the gauge datum (0 m);
* a staff gauge (量水標) with a tick every 0.5 m and coloured marks at the flood
  caution (yellow), evacuation judgement (red), flood danger (purple) and
  bank-full (black) levels, in the JMA risk-map colours;
* brown water whose surface height in the picture is proportional to
  ``level_m / bank_full_m`` (the datum at the bed, bank-full at the crowns);
  at or above bank-full the water spreads over both crowns (overtopping),
  with a foam line where it spills;
* rain streaks (``rain_mm_h``) and sensor noise, from a seeded generator.

The same arguments always give the same pixels: all randomness comes from
``numpy.random.default_rng`` seeded with ``seed``, the camera id (CRC-32) and
the frame time. The camera id also fixes a small per-camera shift of the view.

Examples:
    >>> import datetime as dt
    >>> from suibou.catalogue import LevelGauge
    >>> gauge = LevelGauge(station_id="WL-X", name="X", name_ja="X", lon=139.6, lat=35.7,
    ...     reach_id="R-X", standby_m=1.0, caution_m=1.5, evacuation_m=2.0, danger_m=2.5,
    ...     bank_full_m=3.0)
    >>> when = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)
    >>> frame = render_frame(1.2, gauge, when=when, camera_id="CAM-X")
    >>> frame.size, frame.mode
    ((160, 120), 'RGB')
    >>> render_frame(1.2, gauge, when=when, camera_id="CAM-X").tobytes() == frame.tobytes()
    True
    >>> encode_jpeg(frame)[:2]
    b'\\xff\\xd8'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import zlib

import numpy as np
from PIL import Image, ImageDraw

from suibou.catalogue import LevelGauge

JST = dt.timezone(dt.timedelta(hours=9), "JST")

#: JMA risk-map colours of the threshold marks on the staff gauge.
THRESHOLD_COLOURS: dict[str, tuple[int, int, int]] = {
    "caution_m": (242, 231, 0),       # yellow, level 2
    "evacuation_m": (255, 40, 0),     # red, level 3
    "danger_m": (170, 0, 170),        # purple, level 4
    "bank_full_m": (12, 0, 12),       # black, level 5
}


@dataclasses.dataclass(frozen=True)
class SceneLayout:
    """Where things are in the picture, as fractions of its width and height.

    ``bank_y`` is the embankment crown (bank-full level) and ``bed_y`` the
    channel bed (gauge datum); the water surface is drawn at
    ``bed_y - level / bank_full * (bed_y - bank_y)``.
    """

    overlay_h: float = 0.10
    skyline_y: float = 0.30
    bank_y: float = 0.42
    bed_y: float = 0.92
    channel_left: float = 0.30
    channel_right: float = 0.78
    slope: float = 0.10
    gauge_x: float = 0.60
    gauge_w: float = 0.045
    #: Height of the gauge above bank-full, as a fraction of bank-full.
    gauge_above_bank: float = 0.25


LAYOUT = SceneLayout()


def surface_y(level_m: float, bank_full_m: float, height: int, layout: SceneLayout = LAYOUT,
              shift_y: float = 0.0) -> float:
    """Pixel row of the water surface for a level (clipped to the picture below the overlay)."""
    bed = layout.bed_y * height + shift_y
    bank = layout.bank_y * height + shift_y
    y = bed - max(level_m, 0.0) / bank_full_m * (bed - bank)
    return float(min(max(y, layout.overlay_h * height + 1), height - 1))


def daylight(when: dt.datetime) -> float:
    """Scene brightness factor from the JST time of day: 1 at midday, 0.25 at night."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    local = when.astimezone(JST)
    hour = local.hour + local.minute / 60.0
    # Smooth day curve: full light 08-16, dark 20-04, linear twilight between.
    if 8.0 <= hour <= 16.0:
        return 1.0
    if hour >= 20.0 or hour <= 4.0:
        return 0.25
    if hour < 8.0:
        return 0.25 + 0.75 * (hour - 4.0) / 4.0
    return 0.25 + 0.75 * (20.0 - hour) / 4.0


def camera_shift(camera_id: str) -> tuple[float, float]:
    """The fixed view shift of a camera, ``(dx, dy)`` in pixels of a 160 × 120 frame."""
    crc = zlib.crc32(camera_id.encode())
    return float((crc % 7) - 3), float(((crc // 7) % 5) - 2)


def _rng(seed: int, camera_id: str, when: dt.datetime) -> np.random.Generator:
    stamp = int(when.timestamp())
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(camera_id.encode()), stamp & 0xFFFFFFFF])


def render_frame(
    level_m: float,
    gauge: LevelGauge,
    *,
    when: dt.datetime,
    camera_id: str,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
    rain_mm_h: float = 0.0,
    overlay: bool = True,
    view_shift: tuple[float, float] | None = None,
) -> Image.Image:
    """Draws a synthetic river-camera still of a gauge's reach at a water level.

    Args:
        level_m: Water level, metres above the gauge datum.
        gauge: The level gauge (its thresholds and bank-full level).
        when: Frame time (timezone-aware); sets the light and the overlay stamp.
        camera_id: Camera id; stamped on the frame and fixes the view's shift.
        width, height: Picture size in pixels (at least 64 × 48).
        seed: Seeds rain streaks and sensor noise.
        rain_mm_h: Rain rate at the camera; more rain, more streaks.
        overlay: Draw the id/time strip.
        view_shift: ``(dx, dy)`` shift of the whole view in pixels of a 160 × 120
            frame (scaled to the picture size); default: the camera's own fixed
            shift, from its id (up to ±3 px across, ±2 px down).

    Returns:
        An RGB image.

    Raises:
        ValueError: Naive ``when``, a non-finite level or rain, or a tiny picture.
    """
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    if not math.isfinite(level_m) or not math.isfinite(rain_mm_h) or rain_mm_h < 0:
        raise ValueError("level_m must be finite and rain_mm_h finite and >= 0")
    if width < 64 or height < 48:
        raise ValueError("the picture must be at least 64 x 48 pixels")
    lay = LAYOUT
    w, h = width, height
    crc = zlib.crc32(camera_id.encode())
    # A fixed small shift of the view per camera (mounting differs from site to site).
    dx, dy = camera_shift(camera_id) if view_shift is None else view_shift
    sx = dx / 160.0 * w
    sy = dy / 120.0 * h
    rng = _rng(seed, camera_id, when)
    light = daylight(when)

    img = Image.new("RGB", (w, h), (0, 0, 0))
    d = ImageDraw.Draw(img)
    top = lay.overlay_h * h
    bank_y = lay.bank_y * h + sy
    bed_y = lay.bed_y * h + sy
    skyline = lay.skyline_y * h + sy
    # Sky, with a gentle gradient, and a skyline of blocks.
    for row in range(int(top), int(bank_y) + 1):
        t = (row - top) / max(bank_y - top, 1.0)
        d.line([(0, row), (w, row)], fill=(int(150 + 40 * t), int(170 + 30 * t), int(200 + 20 * t)))
    x = 0.0
    blocks = np.random.default_rng(crc).uniform(0.04, 0.12, 24)
    for i, bw in enumerate(blocks):
        bh = (0.03 + 0.06 * ((i * 37 + crc) % 5) / 4) * h
        d.rectangle([x + sx, skyline - bh, x + sx + bw * w, bank_y], fill=(92, 98, 104))
        x += bw * w
    # Embankment crowns (levee road/grass) and the channel's sloping banks.
    d.rectangle([0, bank_y - 0.04 * h, w, bank_y], fill=(96, 132, 74))
    left, right, slope = lay.channel_left * w + sx, lay.channel_right * w + sx, lay.slope * w
    d.polygon([(0, bank_y), (left, bank_y), (left + slope, bed_y), (left + slope, h), (0, h)], fill=(118, 150, 84))
    d.polygon([(right, bank_y), (w, bank_y), (w, h), (right - slope, h), (right - slope, bed_y)], fill=(110, 142, 80))
    # The far revetment seen across the channel (concrete), and the bed below the datum.
    d.polygon([(left, bank_y), (right, bank_y), (right - slope, bed_y), (left + slope, bed_y)], fill=(158, 156, 148))
    for k in range(1, 5):
        y = bank_y + (bed_y - bank_y) * k / 5
        d.line([(left, y), (right, y)], fill=(140, 138, 130))
    d.rectangle([left + slope, bed_y, right - slope, h], fill=(120, 108, 90))
    # Concrete revetment lines on the banks, for texture.
    for k in range(1, 4):
        f = k / 4
        d.line([(left + slope * f - 0.06 * w, bank_y + (bed_y - bank_y) * f),
                (left + slope * f, bank_y + (bed_y - bank_y) * f)], fill=(140, 160, 120))

    # Staff gauge: white board, 0.5 m ticks, coloured threshold marks.
    gx0, gx1 = lay.gauge_x * w + sx, (lay.gauge_x + lay.gauge_w) * w + sx
    gauge_top = bed_y - (1 + lay.gauge_above_bank) * (bed_y - bank_y)
    d.rectangle([gx0, max(gauge_top, top), gx1, bed_y], fill=(235, 235, 235), outline=(60, 60, 60))
    per_m = (bed_y - bank_y) / gauge.bank_full_m
    tick = 0.0
    while tick <= gauge.bank_full_m * (1 + lay.gauge_above_bank) + 1e-9:
        y = bed_y - tick * per_m
        long = abs(tick - round(tick)) < 1e-9
        d.line([(gx0, y), (gx0 + (gx1 - gx0) * (0.8 if long else 0.5), y)], fill=(20, 20, 20))
        tick += 0.5
    for name, colour in THRESHOLD_COLOURS.items():
        y = bed_y - getattr(gauge, name) * per_m
        d.rectangle([gx1, y - 1, gx1 + 0.03 * w, y + 1], fill=colour)

    # Water: from the surface to the bed inside the channel, over the crowns when overtopping.
    level = float(level_m)
    wy = surface_y(level, gauge.bank_full_m, h, lay, sy)
    water = (104, 88, 66)
    if level >= gauge.bank_full_m:
        d.rectangle([0, wy, w, h], fill=water)
        d.line([(0, wy), (w, wy)], fill=(215, 210, 200), width=max(1, h // 60))
        for side in (left, right):  # spill foam at the crowns
            d.ellipse([side - 0.05 * w, bank_y - 0.03 * h, side + 0.05 * w, bank_y + 0.03 * h],
                      fill=(200, 195, 185))
    elif wy < bed_y:
        frac = (wy - bank_y) / max(bed_y - bank_y, 1.0)
        xl = left + slope * frac
        xr = right - slope * frac
        d.polygon([(xl, wy), (xr, wy), (right - slope, bed_y), (right - slope, h), (left + slope, h),
                   (left + slope, bed_y)], fill=water)
        d.line([(xl, wy), (xr, wy)], fill=(150, 140, 120))
        d.rectangle([left + slope, bed_y, right - slope, h], fill=water)

    arr = np.asarray(img, dtype=np.float32)
    # Ripples on the water surface region: faint horizontal bands.
    rows = np.arange(h)[:, None]
    ripple = 4.0 * np.sin(rows * 1.7 + rng.uniform(0, 2 * np.pi)) * (rows > wy)
    mask = (np.abs(arr - np.array(water, dtype=np.float32)).sum(axis=2, keepdims=True) < 1)
    arr += ripple[:, :, None] * mask * np.ones((1, w, 1))

    # Light: scale by daylight; after dark a lamp lights the gauge.
    shade = np.full((h, w), light, dtype=np.float32)
    if light < 1.0:
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy = (gx0 + gx1) / 2, (bank_y + bed_y) / 2
        lamp = np.exp(-(((xx - cx) / (0.22 * w)) ** 2 + ((yy - cy) / (0.40 * h)) ** 2))
        shade = np.clip(shade + (1.0 - light) * 0.6 * lamp, 0.0, 1.0)
    arr *= shade[:, :, None]

    # Rain streaks: short bright diagonal lines, count grows with intensity.
    n_streaks = int(min(rain_mm_h, 150.0) / 150.0 * 0.02 * w * h)
    if n_streaks:
        xs = rng.uniform(0, w, n_streaks)
        ys = rng.uniform(top, h, n_streaks)
        length = rng.uniform(0.03, 0.07, n_streaks) * h
        for x0, y0, ln in zip(xs, ys, length):
            for k in range(int(ln)):
                yi, xi = int(y0 + k), int(x0 + 0.3 * k)
                if yi < h and xi < w:
                    arr[yi, xi] = 0.6 * arr[yi, xi] + 0.4 * 225.0
    # Sensor noise, stronger in the dark (higher gain).
    arr += rng.normal(0.0, 3.0 + 6.0 * (1.0 - light), arr.shape[:2])[:, :, None]
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")

    if overlay:
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, w, top], fill=(0, 0, 0))
        stamp = when.astimezone(JST).strftime("%m-%d %H:%M")
        room = max(4, w // 6 - len(stamp) - 1)  # the default font is ~6 px per character
        d.text((2, 0), f"{camera_id[:room]} {stamp}", fill=(255, 255, 255))
    return img


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """The image as baseline JPEG bytes (no EXIF, no timestamp: same image, same bytes)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()
