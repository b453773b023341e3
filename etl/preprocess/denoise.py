"""De-noising of raw GPS fixes: multipath rejection, a local smoother, a standstill hold.

Every step is deliberately *local*: the result for a fix depends only on the
fixes within a fixed time horizon around it (:attr:`DenoiseParams.horizon_s`).
That is what lets the Spark step recompute any time slice of a machine from
its samples plus a margin and get the same values as a computation over all
data at once (independence of arrival). Nothing here uses cumulative sums or
whole-series statistics, and each fix's sums are accumulated in the same
order whatever else the input holds.

Fixes are handled as rows of a ``(6, n)`` array (``timestamp, latitude,
longitude, altitude, speed, heading``) with strictly increasing times;
:mod:`etl.preprocess.resample` does the sorting and de-duplication.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0
"""Metres per degree of latitude (and of longitude at the equator)."""

STILL_PAIR_S = 1.5
"""Two standing fixes at most this far apart make a pair whose speed difference is noise."""

HALF_NORMAL_PAIR_MEDIAN = 0.5315
"""Median of ``||a| - |b||`` for independent standard normal ``a`` and ``b``.

GNSS speed is a magnitude: at a standstill a fix reports ``|sigma * a|``, and
the median absolute difference of two such fixes is ``sigma`` times this
(2e7 draws; +-0.0002). Differences, not the speeds themselves, so that a
machine creeping steadily at low speed does not pass for noise.
"""


@dataclass(frozen=True)
class DenoiseParams:
    """Tuning of GPS de-noising; the defaults suit 1 Hz fixes of mining machines.

    Attributes:
        max_jump_m: A fix farther than this (horizontally) from where its
            neighbours put it is a multipath jump and is dropped.
        outlier_neighbours: Fixes on each side of a fix that vote on it. Four
            keep the vote right when one voter is itself an outlier, also at
            the edge of a run where all voters sit on one side.
        outlier_window_s: Neighbours farther away in time than this do not vote.
        window_s: Half-width of the kernel smoothing position, altitude and
            heading, seconds. Wider removes more noise but blurs short
            manoeuvres; the local quadratic keeps constant-acceleration
            motion unbent at any width.
        speed_window_s: The same for speed; narrower, because starts and
            stops are sharp features in speed but gentle ones in position.
        static_window_s: Half-width of the straight-line fit of the track
            that recognises a standstill and measures its (near-zero) speed.
        static_speed_mps: Below this, in both the smoothed GNSS speed and the
            track, the machine is taken to be standing or creeping and its
            speed is read from the track (see :func:`hold_standstill`).
        speed_min_window_s: Narrowest of the speed windows tried per fix
            (see :func:`adaptive_speed`); the ladder climbs geometrically to
            ``speed_window_s``, so the horizon is unchanged.
        speed_steps: Rungs of that ladder; 1 smooths with ``speed_window_s`` only.
        speed_noise_mps: White noise of GNSS speed assumed where the fixes
            themselves cannot tell (no standstill nearby), m/s; elsewhere it
            is measured (see :func:`speed_noise`).
        noise_window_s: Half-width of the window over which a receiver's
            speed noise is measured from the standstills in it.
        noise_prior_fixes: How many measured pairs of fixes weigh as much
            as ``speed_noise_mps``: with few standstills nearby the estimate
            leans on the assumption, with many on the measurement.
        still_heading_deg: Largest heading change between two fixes a
            second apart that still counts as standing (a swinging
            excavator's antenna circles: it moves with a steady track).
        speed_ici_gamma: Half-width of the confidence intervals of the
            window choice, in noise standard deviations: smaller keeps
            short manoeuvres sharper, larger smooths more.
    """

    max_jump_m: float = 50.0
    outlier_neighbours: int = 4
    outlier_window_s: float = 5.0
    window_s: float = 10.0
    speed_window_s: float = 8.0
    static_window_s: float = 15.0
    static_speed_mps: float = 0.5
    speed_min_window_s: float = 2.5
    speed_steps: int = 4
    speed_noise_mps: float = 0.3
    speed_ici_gamma: float = 0.7
    noise_window_s: float = 60.0
    noise_prior_fixes: float = 3.0
    still_heading_deg: float = 2.0

    def __post_init__(self) -> None:
        for name in (
            "max_jump_m",
            "outlier_window_s",
            "window_s",
            "speed_window_s",
            "static_window_s",
            "speed_min_window_s",
            "speed_noise_mps",
            "speed_ici_gamma",
            "noise_window_s",
            "noise_prior_fixes",
            "still_heading_deg",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite value > 0, got {value}")
        if not (math.isfinite(self.static_speed_mps) and self.static_speed_mps >= 0):
            raise ValueError(
                f"static_speed_mps must be a finite value >= 0, got {self.static_speed_mps}"
            )
        if self.speed_steps < 1:
            raise ValueError(f"speed_steps must be >= 1, got {self.speed_steps}")
        if self.outlier_neighbours < 1:
            raise ValueError(f"outlier_neighbours must be >= 1, got {self.outlier_neighbours}")

    @property
    def horizon_s(self) -> float:
        """How far in time a raw fix can influence a de-noised fix.

        The smoothers read kept fixes within their window; whether those were
        kept depends on fixes within ``outlier_window_s`` of them. The speed
        noise is measured over ``noise_window_s`` from pairs of fixes up to
        :data:`STILL_PAIR_S` apart whose standstill is judged by the track's
        slope over ``static_window_s``.
        """
        noise = self.noise_window_s + STILL_PAIR_S + self.static_window_s
        widest = max(self.window_s, self.speed_window_s, self.static_window_s, noise)
        return widest + self.outlier_window_s


def local_metres(
    lat: np.ndarray, lon: np.ndarray, ref_lat: np.ndarray, ref_lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """East and north offsets in metres of points from per-point references.

    An equirectangular projection around each reference: accurate to
    millimetres over the few hundred metres a window spans.
    """
    east = (lon - ref_lon) * (METRES_PER_DEGREE * np.cos(np.radians(ref_lat)))
    north = (lat - ref_lat) * METRES_PER_DEGREE
    return east, north


def _neighbour(
    t: np.ndarray, offset: int, limit_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index, time offset and validity of the fix ``offset`` places away, within ``limit_s``."""
    index = np.arange(t.size) + offset
    valid = (index >= 0) & (index < t.size)
    index = np.clip(index, 0, max(t.size - 1, 0))
    tau = t[index] - t
    valid &= np.abs(tau) <= limit_s
    return index, tau, valid


# Multipath rejection -------------------------------------------------------

_MAX_VOTE_GAIN = 6.0
"""Pairs that extrapolate so far that their noise grows more than this do not vote.

At 1 Hz every pair of the four nearest fixes on a side stays below 5; the
bound only silences pairs of fixes very close to each other, far from the fix.
"""


def find_outliers(
    t: np.ndarray, lat: np.ndarray, lon: np.ndarray, params: DenoiseParams
) -> np.ndarray:
    """Flag multipath jumps by a robust vote of the neighbouring fixes.

    Every pair of neighbours (up to ``outlier_neighbours`` on each side,
    within ``outlier_window_s``) predicts where the fix should be by linear
    inter- or extrapolation in time (unless that extrapolation would amplify
    noise more than ``_MAX_VOTE_GAIN`` times). The fix is an outlier when the lower
    median of its distances to those predictions exceeds ``max_jump_m``. The
    median keeps a jump in one voter from condemning an honest fix, while
    the jump itself is far from every honest pair, so it is rejected rather
    than smoothed into its neighbours. A fix with no pair of voters is kept.

    Returns:
        Boolean mask, true for rejected fixes.
    """
    if t.size < 3:
        return np.zeros(t.size, dtype=bool)
    m = params.outlier_neighbours
    voters = []
    for offset in (*range(-m, 0), *range(1, m + 1)):
        index, tau, valid = _neighbour(t, offset, params.outlier_window_s)
        east, north = local_metres(lat[index], lon[index], lat, lon)
        voters.append((tau, east, north, valid))
    distances = np.full((len(voters) * (len(voters) - 1) // 2, t.size), np.inf)
    for row, (a, b) in enumerate(combinations(voters, 2)):
        # The fix sits at tau = 0 and at the origin of its own local frame.
        share = -a[0] / np.where(a[3] & b[3], b[0] - a[0], 1.0)
        east = a[1] + (b[1] - a[1]) * share
        north = a[2] + (b[2] - a[2]) * share
        steady = np.hypot(1.0 - share, share) <= _MAX_VOTE_GAIN
        distances[row] = np.where(a[3] & b[3] & steady, np.hypot(east, north), np.inf)
    votes = np.isfinite(distances).sum(axis=0)
    distances.sort(axis=0)
    middle = (np.maximum(votes, 1) - 1) // 2
    lower_median = np.take_along_axis(distances, middle[None, :], axis=0)[0]
    return (votes > 0) & (lower_median > params.max_jump_m)


# Local polynomial smoothing ------------------------------------------------


class LocalFit(NamedTuple):
    """A local polynomial fit of several channels, evaluated at every fix.

    Attributes:
        values: Fitted values, shape ``(channels, fixes)``.
        slopes: Fitted first derivatives per second; NaN where a fix has no
            neighbour to take a slope from.
    """

    values: np.ndarray
    slopes: np.ndarray


def _reach(t: np.ndarray, window_s: float) -> int:
    """Most fixes within ``window_s`` after any fix; bounds the loop over neighbours."""
    if t.size == 0:
        return 0
    after = np.searchsorted(t, t + window_s, side="left") - np.arange(t.size) - 1
    return int(after.max())


def _pairs(t: np.ndarray, window_s: float) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Fixes ``d`` places apart, for ``d = 1, 2, ...`` while any pair is within the window.

    Yields ``(d, gap, weight)``: ``gap = t[d:] - t[:-d]`` and its tricube
    weight, zero at or beyond ``window_s``. Fix ``i`` sees fix ``i + d`` at
    ``tau = gap[i]`` and fix ``i + d`` sees fix ``i`` at ``-gap[i]`` with the same
    weight, so one pass serves both sides. Tricube weights fall smoothly to
    zero at the window's edge: a fix entering or leaving it barely moves the fit.
    """
    for d in range(1, _reach(t, window_s) + 1):
        gap = t[d:] - t[:-d]
        u = np.minimum(gap / window_s, 1.0)
        base = 1.0 - u * u * u
        yield d, gap, base * base * base


def _inverse_columns(moments: np.ndarray, quadratic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two columns of the inverse moment matrix of the local polynomial fit.

    With them the fitted value and slope at ``tau = 0`` are
    ``sum w * (c0 + c1 tau + c2 tau^2) * y`` over the window (the equivalent
    kernels). Quadratic where asked, otherwise linear, and the fix itself
    when it has no neighbour. Solved in closed form so that each fix's result
    depends on its own sums only.
    """
    s0, s1, s2, s3, s4 = moments
    c00, c01, c02 = s2 * s4 - s3 * s3, s2 * s3 - s1 * s4, s1 * s3 - s2 * s2
    c11, c12 = s0 * s4 - s2 * s2, s1 * s2 - s0 * s3
    det2 = s0 * s2 - s1 * s1
    linear = ~quadratic & (det2 > 0)
    det3 = np.where(quadratic, s0 * c00 + s1 * c01 + s2 * c02, 1.0)
    det2 = np.where(linear, det2, 1.0)
    value = np.vstack(
        [
            np.where(quadratic, c00 / det3, np.where(linear, s2 / det2, 1.0)),
            np.where(quadratic, c01 / det3, np.where(linear, -s1 / det2, 0.0)),
            np.where(quadratic, c02 / det3, 0.0),
        ]
    )
    slope = np.vstack(
        [
            np.where(quadratic, c01 / det3, np.where(linear, -s1 / det2, 0.0)),
            np.where(quadratic, c11 / det3, np.where(linear, s0 / det2, 0.0)),
            np.where(quadratic, c12 / det3, 0.0),
        ]
    )
    return value, slope


def local_fit(t: np.ndarray, values: np.ndarray, window_s: float, degree: int = 2) -> LocalFit:
    """Local polynomial regression (tricube weights) of each channel at each fix.

    A linear smoother: all channels share the weights, so one pass over the
    window computes the kernel and another applies it. Of degree 2 it
    reproduces any quadratic function of time exactly, hence leaves
    constant-velocity (and constant-acceleration) tracks unchanged, while
    averaging white noise over the window. A fix without two neighbours on
    each side gets a linear fit instead (a lopsided quadratic extrapolates
    noise); a linear fit is still exact at constant velocity. Channels enter
    as differences to the fix's own value, which keeps latitude and
    longitude precise without a global reference point.

    Args:
        t: Fix times, strictly increasing.
        values: Channels, shape ``(channels, fixes)``.
        window_s: Half-width of the kernel in seconds.
        degree: 2 (quadratic where possible) or 1 (straight line).

    Returns:
        Fitted values and slopes.
    """
    n = t.size
    moments = np.zeros((5, n))
    moments[0] = 1.0  # the fix itself: weight 1 at tau = 0
    before = np.zeros(n, dtype=np.int64)
    after = np.zeros(n, dtype=np.int64)
    for d, gap, weight in _pairs(t, window_s):
        power = weight
        for k in range(5):
            moments[k, : n - d] += power  # fix i, neighbour i + d at +gap
            moments[k, d:] += power if k % 2 == 0 else -power  # fix i + d, neighbour i at -gap
            power = power * gap
        inside = weight > 0
        after[: n - d] += inside
        before[d:] += inside
    quadratic = (before >= 2) & (after >= 2) & (degree >= 2)
    value, slope = _inverse_columns(moments, quadratic)
    fitted, slopes = values.copy(), np.zeros_like(values)
    for d, gap, weight in _pairs(t, window_s):
        change = values[:, d:] - values[:, : n - d]
        ahead, behind = slice(0, n - d), slice(d, n)
        fitted[:, ahead] += (
            weight * (value[0, ahead] + gap * (value[1, ahead] + gap * value[2, ahead])) * change
        )
        fitted[:, behind] -= (
            weight * (value[0, behind] - gap * (value[1, behind] - gap * value[2, behind])) * change
        )
        slopes[:, ahead] += (
            weight * (slope[0, ahead] + gap * (slope[1, ahead] + gap * slope[2, ahead])) * change
        )
        slopes[:, behind] -= (
            weight * (slope[0, behind] - gap * (slope[1, behind] - gap * slope[2, behind])) * change
        )
    slopes[:, before + after == 0] = np.nan
    return LocalFit(fitted, slopes)


def _smooth_with_gain(
    t: np.ndarray, y: np.ndarray, window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Local quadratic fit of channels and the noise gain ``sqrt(sum k^2)`` of its kernel.

    The fitted value is ``sum k_j y_j`` over the window (the equivalent
    kernel ``k``, summing to one); white noise of standard deviation
    ``sigma`` on ``y`` leaves ``sigma * gain`` on the fit. Same sums, in the
    same order, as :func:`local_fit`.
    """
    n = t.size
    moments = np.zeros((5, n))
    moments[0] = 1.0
    before = np.zeros(n, dtype=np.int64)
    after = np.zeros(n, dtype=np.int64)
    for d, gap, weight in _pairs(t, window_s):
        power = weight
        for k in range(5):
            moments[k, : n - d] += power
            moments[k, d:] += power if k % 2 == 0 else -power
            power = power * gap
        inside = weight > 0
        after[: n - d] += inside
        before[d:] += inside
    value, _ = _inverse_columns(moments, (before >= 2) & (after >= 2))
    fitted = y.copy()
    square = value[0] * value[0]  # the fix itself: weight 1 at tau = 0
    for d, gap, weight in _pairs(t, window_s):
        change = y[..., d:] - y[..., : n - d]
        ahead, behind = slice(0, n - d), slice(d, n)
        k_ahead = weight * (value[0, ahead] + gap * (value[1, ahead] + gap * value[2, ahead]))
        k_behind = weight * (value[0, behind] - gap * (value[1, behind] - gap * value[2, behind]))
        fitted[..., ahead] += k_ahead * change
        fitted[..., behind] -= k_behind * change
        square[ahead] += k_ahead * k_ahead
        square[behind] += k_behind * k_behind
    return fitted, np.sqrt(square)


def speed_windows(params: DenoiseParams) -> tuple[float, ...]:
    """The ladder of speed windows, narrowest first, widest ``speed_window_s``."""
    short = min(params.speed_min_window_s, params.speed_window_s)
    steps = params.speed_steps
    if steps <= 1 or short >= params.speed_window_s:
        return (params.speed_window_s,)
    ratio = params.speed_window_s / short
    rungs = [short * ratio ** (i / (steps - 1)) for i in range(steps - 1)]
    return (*rungs, params.speed_window_s)


class SpeedFit(NamedTuple):
    """GNSS speed smoothed by :func:`adaptive_speed`, with its square smoothed alike.

    Attributes:
        speed: Mean speed per fix over the chosen window.
        square: Mean squared speed over the same window: what removes the
            folding bias near zero (see :func:`unfold_speed`).
    """

    speed: np.ndarray
    square: np.ndarray


def adaptive_speed(
    t: np.ndarray, speed: np.ndarray, params: DenoiseParams, noise: np.ndarray | float | None = None
) -> SpeedFit:
    """GNSS speed smoothed with a per-fix window chosen by intersecting confidence intervals.

    Fits of growing width (see :func:`speed_windows`) each give an interval
    ``fit +- speed_ici_gamma * noise * gain``. The widest fit whose
    interval still meets those of all narrower fits is kept (the ICI rule):
    where speed is steady the widest window averages the most noise away,
    where a swing or a shuttle bends it the wide fits leave the narrow
    ones' intervals and a narrow window keeps the manoeuvre. Every fit reads
    fixes within ``speed_window_s`` only, so the choice is as local as
    the fits. ``noise`` is the speed noise per fix (default: the assumed
    ``speed_noise_mps``). The squared speed is fitted with the window the
    speed chose, so a short stop keeps its sharpness in both.
    """
    sigma = params.speed_noise_mps if noise is None else noise
    channels = np.vstack([speed, speed * speed])
    chosen = lower = upper = None
    alive = np.ones(t.size, dtype=bool)
    for window_s in speed_windows(params):
        fitted, gain = _smooth_with_gain(t, channels, window_s)
        spread = params.speed_ici_gamma * sigma * gain
        if chosen is None:
            chosen, lower, upper = fitted, fitted[0] - spread, fitted[0] + spread
            continue
        lower = np.maximum(lower, fitted[0] - spread)
        upper = np.minimum(upper, fitted[0] + spread)
        alive &= lower <= upper
        chosen = np.where(alive, fitted, chosen)
    if chosen is None:
        chosen = channels
    return SpeedFit(chosen[0], chosen[1])


# Speed, heading and the whole chain ----------------------------------------


def track_speed(fit: LocalFit, lat: np.ndarray) -> np.ndarray:
    """Horizontal speed in m/s from the fitted slopes of latitude and longitude (rows 0, 1)."""
    east = fit.slopes[1] * (METRES_PER_DEGREE * np.cos(np.radians(lat)))
    north = fit.slopes[0] * METRES_PER_DEGREE
    return np.hypot(east, north)


def _circular_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of two headings in degrees, in [0, 180]."""
    gap = np.abs(np.mod(a - b, 360.0))
    return np.minimum(gap, 360.0 - gap)


def steady_pairs(t: np.ndarray, heading: np.ndarray, params: DenoiseParams) -> np.ndarray:
    """Whether each fix and the next lie at most :data:`STILL_PAIR_S` apart, heading steady."""
    close = np.diff(t) <= STILL_PAIR_S
    return close & (_circular_gap(heading[1:], heading[:-1]) <= params.still_heading_deg)


def turning(t: np.ndarray, heading: np.ndarray, params: DenoiseParams) -> np.ndarray:
    """Fixes whose heading turns by more than ``still_heading_deg`` to a neighbour a second away.

    A standing machine's receiver reports its body's heading, which holds
    still; a turning one moves its antenna (an excavator's circles as it
    swings) even where its track barely moves.
    """
    turns = np.diff(t) <= STILL_PAIR_S
    turns &= _circular_gap(heading[1:], heading[:-1]) > params.still_heading_deg
    return np.r_[turns, False] | np.r_[False, turns]


def speed_noise(
    t: np.ndarray,
    speed: np.ndarray,
    heading: np.ndarray,
    from_track: np.ndarray,
    params: DenoiseParams,
) -> np.ndarray:
    """The receiver's GNSS speed noise (standard deviation, m/s) around each fix, measured.

    Receivers differ, and so does one receiver from site to site: a speed
    noise assumed once is wrong by a factor of three on a poor receiver,
    and then a standstill reads as a crawl. It is measured instead from
    pairs of consecutive fixes (at most :data:`STILL_PAIR_S` apart) that
    both stand: the track's straight-line slope below ``static_speed_mps``
    and the heading steady within ``still_heading_deg`` (an excavator's
    antenna circles as it swings, with a steady track but a turning
    heading). Standing, each fix reports ``|sigma * a|``, and a pair's
    absolute speed difference divided by :data:`HALF_NORMAL_PAIR_MEDIAN`
    has median ``sigma``. Moving faster than :data:`MOVING_SPEED_MPS`, the
    second difference of three consecutive speeds divided by
    :data:`NORMAL_TRIPLE_MEDIAN` has it too. The median of both kinds
    within ``noise_window_s`` estimates ``sigma``, robust to a few pairs
    that move after all and to sharp manoeuvres; the triples count only
    where fewer than :data:`MIN_STANDING_PAIRS` pairs stand nearby. The
    estimate is pulled towards ``speed_noise_mps`` (weighted as
    ``noise_prior_fixes`` pairs). Noise-free fixes measure zero noise, so
    clean data stay unbent.

    Returns:
        Noise per fix, m/s, never negative.
    """
    n = t.size
    prior = np.full(n, params.speed_noise_mps)
    if n < 2:
        return prior
    standing = from_track < params.static_speed_mps
    pair = standing[1:] & standing[:-1] & steady_pairs(t, heading, params)
    at = t[1:][pair]  # a pair belongs to its later fix
    first = np.searchsorted(at, t - params.noise_window_s, side="left")
    last = np.searchsorted(at, t + params.noise_window_s, side="right")
    scaled = np.abs(np.diff(speed))[pair] / HALF_NORMAL_PAIR_MEDIAN
    standing_noise, standing_count = _window_median(scaled, first, last)
    moving_noise, moving_count = _moving_noise(t, speed, params)
    # Standing pairs measure the noise where it matters most (folding is exact at
    # rest); moving triples stand in where few pairs stand nearby.
    enough = standing_count >= MIN_STANDING_PAIRS
    count = np.where(enough, standing_count, standing_count + moving_count)
    total = np.nan_to_num(standing_noise) * standing_count
    total += np.where(enough, 0.0, np.nan_to_num(moving_noise) * moving_count)
    weight = params.noise_prior_fixes
    return (total + weight * prior) / (count + weight)


def _moving_noise(
    t: np.ndarray, speed: np.ndarray, params: DenoiseParams
) -> tuple[np.ndarray, np.ndarray]:
    """Speed noise measured from the second differences of fixes that move steadily.

    Three consecutive fixes a second apart, the middle one's smoothed speed
    (a local fit, not the noisy speeds themselves, so that the choice does
    not favour small noise) at least :data:`MOVING_SPEED_MPS`.

    Returns:
        ``(noise, count)`` per fix over ``noise_window_s``; NaN where none count.
    """
    if t.size < 3:
        return np.full(t.size, np.nan), np.zeros(t.size, dtype=np.int64)
    smooth, _ = _smooth_with_gain(t, speed, params.speed_window_s)
    moving = (
        (np.diff(t[1:]) <= STILL_PAIR_S)
        & (np.diff(t[:-1]) <= STILL_PAIR_S)
        & (smooth[1:-1] >= MOVING_SPEED_MPS)
    )
    at = t[1:-1][moving]
    scaled = np.abs(np.diff(speed, n=2))[moving] / NORMAL_TRIPLE_MEDIAN
    first = np.searchsorted(at, t - params.noise_window_s, side="left")
    last = np.searchsorted(at, t + params.noise_window_s, side="right")
    return _window_median(scaled, first, last)


MIN_STANDING_PAIRS = 10
"""Standing pairs within ``noise_window_s`` enough to measure the noise from them alone."""

MOVING_SPEED_MPS = 2.0
"""Three consecutive fixes at least this fast move: their speed's second difference is noise.

Folded noise then barely matters (below 1.5 % of fixes at 0.9 m/s of noise), and a
machine's speed bends little within two seconds.
"""

NORMAL_TRIPLE_MEDIAN = 0.6744897501960817 * math.sqrt(6.0)
"""Median of ``|a - 2b + c|`` for independent standard normal ``a``, ``b``, ``c``."""

_MEDIAN_ROWS = 4096
"""Fixes whose windows are gathered at once: bounds the memory of :func:`_window_median`."""


def _window_median(
    values: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Median and count of ``values[first[i]:last[i]]`` for each ``i``.

    Each window's median depends on its own values only (sorted, not summed),
    so it is the same whatever else the input holds.

    Returns:
        ``(median, count)`` per window; the median is NaN where the window is empty.
    """
    n = first.size
    median = np.full(n, np.nan)
    count = last - first
    width = int(count.max(initial=0))
    if width == 0:
        return median, count
    offsets = np.arange(width)
    for lo in range(0, n, _MEDIAN_ROWS):
        hi = min(lo + _MEDIAN_ROWS, n)
        index = first[lo:hi, None] + offsets
        inside = index < last[lo:hi, None]
        window = np.where(inside, values[np.minimum(index, values.size - 1)], np.nan)
        some = count[lo:hi] > 0
        median[lo:hi][some] = np.nanmedian(window[some], axis=1)
    return median, count


FOLDED_BIAS = math.sqrt(2.0 / math.pi)
"""``E|sigma a| / sigma``: how far above zero folded noise holds a standing machine's mean speed."""

UNFOLD_BELOW_NOISE = 3.0
"""Speeds within this many noise deviations of zero have their folding bias taken off.

Above it ``E|v + sigma a|`` differs from ``v`` by less than 0.002 ``sigma``:
the adaptive smoother's value stands.
"""


def unfold_speed(fit: SpeedFit, noise: np.ndarray) -> np.ndarray:
    """GNSS speed near zero with the bias of its folded noise removed.

    A reported speed ``|v + sigma a|`` averages above ``v`` (at rest, to
    0.8 ``sigma``), but its square averages to exactly ``v^2 + sigma^2``. Where
    the smoothed speed lies within :data:`UNFOLD_BELOW_NOISE` deviations of
    zero, the speed is therefore ``sqrt(max(mean(speed^2) - sigma^2, 0))``,
    both means over the window :func:`adaptive_speed` chose, and kept between
    the mean speed less its largest folding bias and the mean speed itself.

    Args:
        fit: Smoothed speed and squared speed (:func:`adaptive_speed`).
        noise: Speed noise per fix (:func:`speed_noise`).

    Returns:
        Speed per fix, m/s, never negative.
    """
    speed = np.maximum(fit.speed, 0.0)
    unfolded = np.sqrt(np.maximum(fit.square - noise * noise, 0.0))
    # Folding raises the mean speed by at most FOLDED_BIAS * sigma (at rest) and
    # never lowers it: bounds that hold where a short window's fits of a sharp
    # turn-around bend the square below the speed's own square.
    unfolded = np.clip(unfolded, np.maximum(speed - FOLDED_BIAS * noise, 0.0), speed)
    return np.where(speed < UNFOLD_BELOW_NOISE * noise, unfolded, speed)


def hold_standstill(
    gnss_speed: np.ndarray,
    from_track: np.ndarray,
    *,
    steady_square: np.ndarray,
    noise: np.ndarray,
    turns: np.ndarray,
    params: DenoiseParams,
) -> np.ndarray:
    """Speed that does not float above zero while the machine stands still.

    A standstill is where the slope of a straight line fitted to the track
    over ``static_window_s`` stays below ``static_speed_mps``, so does the
    GNSS speed unfolded from its mean square (over that window,
    ``steady_square``, or over the adaptive one, ``gnss_speed``; see
    :func:`unfold_speed`), and the heading does not turn. The wide window
    keeps a noisy receiver's standstill from flickering into motion. There
    the lower of the track slope and the unfolded GNSS speed is the speed:
    the track averages out to zero at rest, and the unfolded GNSS speed
    often reaches it. On clean data both agree, so the choice changes nothing.

    Args:
        gnss_speed: Unfolded GNSS speed over the adaptive window.
        from_track: The track's straight-line slope, m/s.
        steady_square: Mean squared GNSS speed over ``static_window_s``.
        noise: Speed noise per fix (:func:`speed_noise`).
        turns: Fixes whose heading turns (:func:`turning`): never standing.
        params: The threshold.

    Returns:
        Speed per fix, m/s, never negative.
    """
    steady = np.sqrt(np.maximum(steady_square - noise * noise, 0.0))
    slow = np.minimum(steady, gnss_speed) < params.static_speed_mps
    still = (from_track < params.static_speed_mps) & slow & ~turns
    return np.maximum(np.where(still, np.minimum(from_track, gnss_speed), gnss_speed), 0.0)


def heading_components(heading_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """North and east components of unit heading vectors, for smoothing on the circle."""
    rad = np.radians(heading_deg)
    return np.cos(rad), np.sin(rad)


def wrap_degrees(angle: np.ndarray) -> np.ndarray:
    """Angles folded into [0, 360); ``np.mod`` alone returns 360.0 for -1e-15."""
    folded = np.mod(angle, 360.0)
    return np.where(folded >= 360.0, 0.0, folded)


def denoise_fixes(fixes: np.ndarray, params: DenoiseParams) -> tuple[np.ndarray, np.ndarray]:
    """Reject multipath jumps, then smooth what is left.

    Position, altitude and speed are smoothed by a local quadratic fit,
    heading as a unit vector (so 350 and 10 degrees average to 0, not 180).
    Speed is smoothed with a window chosen against the receiver's measured
    noise, freed of the bias that folding puts on its noise near zero, and
    held near zero at standstills.

    Args:
        fixes: ``(6, n)`` rows ``timestamp, latitude, longitude, altitude,
            speed, heading``, strictly increasing in time.
        params: De-noising parameters.

    Returns:
        ``(smoothed, outliers)``: the kept fixes de-noised in the same row
        layout, and the rejection mask over the input fixes.
    """
    t, lat, lon, alt, speed, heading = fixes
    outliers = find_outliers(t, lat, lon, params)
    keep = ~outliers
    t, lat, lon, speed, heading = t[keep], lat[keep], lon[keep], speed[keep], heading[keep]
    north, east = heading_components(heading)
    track = local_fit(t, np.vstack([lat, lon, alt[keep], north, east]), params.window_s).values
    wide = local_fit(t, np.vstack([lat, lon, speed * speed]), params.static_window_s, degree=1)
    from_track = track_speed(wide, lat)
    noise = speed_noise(t, speed, heading, from_track, params)
    gnss_speed = unfold_speed(adaptive_speed(t, speed, params, noise), noise)
    smoothed = np.vstack(
        [
            t,
            track[:3],
            hold_standstill(
                gnss_speed,
                from_track,
                steady_square=wide.values[2],
                noise=noise,
                turns=turning(t, heading, params),
                params=params,
            )[None, :],
            wrap_degrees(np.degrees(np.arctan2(track[4], track[3])))[None, :],
        ]
    )
    return smoothed, outliers
