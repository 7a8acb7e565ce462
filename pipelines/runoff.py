"""A reach's surface rainfall index and routed runoff index, kept in event time (:mod:`suibou.runoff`).

Each reach's fusion keeps, for itself and for every reach upstream of it, the
surface tanks of that reach's grid cells and a short history of their runoff.
The grid samples of a reach are keyed to it and to every reach downstream
(:class:`pipelines.areas.AreaPlan`), so each reach routes its own network; a
reach upstream is stepped once in each reach below it, which costs less than a
stage between them.

The state is part of the area's fold state, so it follows event time and the
runner's checkpoints. A resumed job on Prism rebuilds it from its warm-up span
(:mod:`pipelines.recovery`, 25 hours): the surface tanks forget rain within
hours, far inside it.

A catchment that has sent grids, but none for :data:`pipelines.grids.GRID_MAX_AGE_S`
at the time its water would need to have fallen, makes the reach's runoff index
unknown (absent from its scores), never zero; so does a time before a cut in its
history (a gap in its grids, or history trimmed). Before its first grid it counts
as dry: that is the job's start, which understates the indices of a job started
in rain for its first hours.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Mapping

import numpy as np

from pipelines.grids import GRID_MAX_AGE_S, AreaRainfall
from suibou.runoff import (
    AHEAD_STEPS_MIN,
    ATTENUATION_MIN,
    forecast_surface_tanks,
    routed_mean,
    steady_storage,
    step_surface_tanks,
    surface_runoff,
)

#: Score feature names of the indices.
SURFACE_INDEX = "surface_rainfall_index_mm"
SURFACE_INDEX_AHEAD = "surface_rainfall_index_60min_max_mm"
RUNOFF_INDEX = "runoff_index_mm_h"
RUNOFF_INDEX_AHEAD = "runoff_index_60min_max_mm_h"


@dataclasses.dataclass(frozen=True)
class CatchmentRunoff:
    """The surface tanks of one reach's cells, and what they gave.

    Attributes:
        at: Time of the grid the tanks were last stepped to.
        storage: Storage per cell, mm.
        times: Epoch seconds of each grid, oldest first, as far back as the
            network's longest travel time needs.
        runoff: The cells' mean runoff (mm/h) at each of ``times``.
        ahead_runoff: The cells' mean runoff at each of :data:`suibou.runoff.AHEAD_STEPS_MIN`
            after ``at`` under that grid's nowcast; empty without one. Beyond the
            last step the last is held, until the grid would be stale.
        ahead_peak: The largest storage among the cells over those steps (None without a nowcast).
        known_from: Epoch seconds from which the runoff is known: the first grid,
            or where the history was cut (trimmed, or restarted after a gap).
        dry_before: Before ``known_from`` the catchment was dry (the job's start,
            where nothing is known of earlier rain); False after a cut: unknown.
    """

    at: dt.datetime
    storage: tuple[float, ...]
    times: tuple[float, ...]
    runoff: tuple[float, ...]
    ahead_runoff: tuple[float, ...] = ()
    ahead_peak: float | None = None
    known_from: float = 0.0
    dry_before: bool = True

    def runoff_at(self, when: dt.datetime) -> float | None:
        """Runoff (mm/h) averaged over :data:`ATTENUATION_MIN` before ``when``; None if unknown there."""
        return self.runoff_at_s(when.timestamp())

    def runoff_at_s(self, t: float) -> float | None:
        """:meth:`runoff_at` of a time in epoch seconds."""
        if not self.times or t < self.known_from:
            # Before the first grid this catchment sent: the job's start, taken as dry.
            # Before a cut in its history (a gap in its grids, or trimmed): unknown.
            return 0.0 if self.dry_before else None
        offset_s = t - self.times[-1]
        if offset_s > 0:
            # After the last grid: its nowcast's nearest step (its own runoff under 5 minutes on),
            # the last step held until the grid is stale.
            offset = offset_s / 60.0
            if offset > AHEAD_STEPS_MIN[-1] + GRID_MAX_AGE_S / 60.0:
                return None
            if offset >= AHEAD_STEPS_MIN[0] / 2:
                if not self.ahead_runoff:
                    return None
                step = min(range(len(AHEAD_STEPS_MIN)), key=lambda i: abs(AHEAD_STEPS_MIN[i] - offset))
                return self.ahead_runoff[step]
            t = self.times[-1]
        last = bisect.bisect_right(self.times, t)
        first = bisect.bisect_right(self.times, t - 60.0 * ATTENUATION_MIN)
        if last > first:
            return sum(self.runoff[first:last]) / (last - first)
        if t - self.times[last - 1] > GRID_MAX_AGE_S:
            return None
        return self.runoff[last - 1]


def step_catchment(state: CatchmentRunoff | None, grid: AreaRainfall, keep_s: float) -> CatchmentRunoff | None:
    """``state`` stepped to ``grid``'s time with its observed rain; None while grids carry no cells.

    The rain rate of a grid is held over the step that ends at it. After a gap
    longer than :data:`GRID_MAX_AGE_S` the tanks restart at their steady state
    under the new grid's rain and the history before it is unknown. A grid not
    newer than the state is ignored.
    """
    rates = grid.cell_rates_mm_h
    if not rates or (state is not None and grid.event_time <= state.at):
        return state
    rate = np.asarray(rates, dtype=np.float64)
    now = grid.event_time.timestamp()
    times: tuple[float, ...] = ()
    runoff: tuple[float, ...] = ()
    if state is None or len(state.storage) != len(rates):  # first grid, or the area's cells changed
        storage = np.zeros(rate.size)
        known_from, dry_before = now, state is None
    elif (grid.event_time - state.at).total_seconds() > GRID_MAX_AGE_S:
        # No grid for longer than one counts: what fell meanwhile is unknown. The tanks
        # restart at the stand-in (steady state under this grid's rain) and the runoff
        # before it is unknown, never read as dry.
        storage = steady_storage(rate)
        known_from, dry_before = now, False
    else:
        storage = step_surface_tanks(np.asarray(state.storage), rate, (grid.event_time - state.at).total_seconds()
                                     / 3600.0)
        keep = bisect.bisect_left(state.times, now - keep_s)
        times, runoff = state.times[keep:], state.runoff[keep:]
        known_from, dry_before = state.known_from, state.dry_before
        if keep:
            known_from, dry_before = times[0] if times else now, False
    ahead_runoff: tuple[float, ...] = ()
    ahead_peak: float | None = None
    if grid.cell_nowcast_30min_mm and grid.cell_nowcast_60min_mm:
        steps = forecast_surface_tanks(storage, np.asarray(grid.cell_nowcast_30min_mm),
                                       np.asarray(grid.cell_nowcast_60min_mm))
        ahead_runoff = tuple(float(surface_runoff(s).mean()) for s in steps)
        ahead_peak = float(max(s.max() for s in steps))
    return CatchmentRunoff(grid.event_time, tuple(storage.tolist()), (*times, now),
                           (*runoff, float(surface_runoff(storage).mean())), ahead_runoff, ahead_peak, known_from,
                           dry_before)


def runoff_features(catchments: Mapping[str, CatchmentRunoff], own: str,
                    network: tuple[tuple[str, float], ...], at: dt.datetime) -> dict[str, float]:
    """A reach's indices at ``at``, for its scores: the names above, each left out when unknown.

    Args:
        catchments: The tanks of the reach (``own``) and of the reaches upstream of it.
        network: ``(reach id, travel minutes to this reach's gauge)`` for the reach
            itself (0) and every reach upstream of it.
    """
    mine = catchments.get(own)
    if mine is None or not 0 <= (at - mine.at).total_seconds() <= GRID_MAX_AGE_S:
        return {}  # no fresh grid of its own: nothing to judge its rain by
    out = {SURFACE_INDEX: round(max(mine.storage), 2)}
    if mine.ahead_peak is not None:
        out[SURFACE_INDEX_AHEAD] = round(max(*mine.storage, mine.ahead_peak), 2)

    members = [(catchments.get(reach_id), 60.0 * travel_min) for reach_id, travel_min in network]

    def index(when: float) -> float | None:
        return routed_mean([None if c is None else c.runoff_at_s(when - travel_s) for c, travel_s in members])

    now = index(at.timestamp())
    if now is None:
        return out
    out[RUNOFF_INDEX] = round(now, 2)
    ahead = [index(at.timestamp() + 60.0 * m) for m in AHEAD_STEPS_MIN]
    if all(a is not None for a in ahead):
        out[RUNOFF_INDEX_AHEAD] = round(max([now, *(a for a in ahead if a is not None)]), 2)
    return out
