"""Condition detectors: limits, vibration zones, EWMA, CUSUM, rate, trend to a limit, run hours, cycles.

Each takes (time, value) and says whether its condition holds, with a level and the statistic it
judged by. Delays, acknowledgement and shelving belong to the alarm around it (alarms.py), so
every detector stays a few lines of arithmetic. Formulas: ../shared DOMAIN.md (ISO 10816-3 /
20816-3, EWMA and tabular CUSUM charts, least-squares trend).

A verdict's `detail` is English, for logs and MQTT. The same detail travels as `detail_key` and
`detail_args` (numbers and short codes), which a page translates into its own language:

    limit               {level: high_high | high | low | low_low, limit}
    zone                {zone: A | B | C | D, c_from, d_from}        boundaries in mm/s
    learning            {}                                           EWMA and CUSUM baselines
    ewma                {z, low, high}
    cusum               {upper, lower, h}
    rate                {slope, limit}                               per second
    trend               {hours, limit}                               hours left to the limit
    run_hours           {hours, interval}
    cycles              {cycles, interval}

and for the alarms the agent raises about itself (AlarmManager.system):

    certificate_expiry  {what: own | trusted, date: YYYY-MM-DD}
    certificate_renewed {}
    buffer_corrupt      {error, aside}                               SQLite's error, the file moved aside
"""

from __future__ import annotations

__all__ = ["DETAILS", "Verdict", "has_non_finite", "make_detector"]

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edge_agent.config_models import (
    AlarmConfig,
    CusumAlarmConfig,
    CyclesAlarmConfig,
    EwmaAlarmConfig,
    LimitAlarmConfig,
    RateAlarmConfig,
    RunHoursAlarmConfig,
    TrendAlarmConfig,
    VibrationZoneAlarmConfig,
)

NS = 1_000_000_000

# ISO 10816-3 / 20816-3 zone boundaries A/B, B/C, C/D in mm/s RMS, by machine group and foundation.
ISO_10816_3 = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}


# The English text of each detail key (see the module docstring), formatted with its args.
DETAILS = {
    "limit": "{level} limit {limit:g}",
    "zone": "zone {zone} (C from {c_from:g}, D from {d_from:g} mm/s)",
    "learning": "learning the baseline",
    "ewma": "EWMA {z:.4g} outside {low:.4g}..{high:.4g}",
    "cusum": "CUSUM C+ {upper:.4g}, C- {lower:.4g}, h {h:.4g}",
    "rate": "{slope:.4g}/s against {limit:g}/s",
    "trend": "{hours:.1f} h to {limit:g}",
    "run_hours": "{hours:.1f} of {interval:g} running hours",
    "cycles": "{cycles} of {interval} cycles",
}


@dataclass
class Verdict:
    active: bool
    level: str | None = None
    statistic: float | None = None
    detail: str | None = None
    condition: dict[str, Any] | None = None  # a condition record to publish, if any
    detail_key: str | None = None  # `detail` in a form a page translates: a key of DETAILS
    detail_args: dict[str, Any] = field(default_factory=dict)


def _described(key: str, **args: Any) -> dict[str, Any]:
    """A verdict's detail fields: the English text from the exact figures, the args rounded."""
    return {
        "detail": DETAILS[key].format(**args),
        "detail_key": key,
        "detail_args": {name: _rounded(value) for name, value in args.items()},
    }


def _rounded(value: Any) -> Any:
    """Four significant digits, whole numbers kept whole: figures for people, not for sums."""
    if not isinstance(value, float) or value == 0 or not math.isfinite(value):
        return value
    return round(value, max(0, 3 - math.floor(math.log10(abs(value)))))


class Detector:
    """Base: `update` judges one sample; state for restarts is the instance's plain fields.

    Subclasses judge in `_judge`. A NaN or infinite sample never reaches it: one would stay in a
    mean, a sum or a window for good and blind the detector.
    """

    _last: Verdict | None = None  # the latest verdict; private fields are not saved state

    def update(self, t_ns: int, value: float) -> Verdict:
        """Judge one sample. A NaN or infinite one is ignored: the latest verdict stands."""
        if not math.isfinite(value):
            last = self._last
            return Verdict(False) if last is None else replace(last, condition=None)
        self._last = verdict = self._judge(t_ns, value)
        return verdict

    def _judge(self, t_ns: int, value: float) -> Verdict:
        raise TypeError(f"{type(self).__name__} does not judge samples")

    def reset(self) -> None:
        """The maintenance command: start counting again (run hours, cycles, CUSUM sums)."""

    def to_state(self) -> dict[str, Any]:
        return {
            k: (list(v) if isinstance(v, deque) else v)
            for k, v in vars(self).items()
            if k != "config" and not k.startswith("_")
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `to_state`. A state holding NaN or infinity (as an older version could
        write) raises ValueError and changes nothing: the detector starts afresh instead."""
        if has_non_finite(state):
            raise ValueError(f"the saved {type(self).__name__} state holds NaN or infinity")
        for key, value in state.items():
            if key.startswith("_"):
                continue
            current = getattr(self, key, None)
            if isinstance(current, deque):
                current.clear()
                current.extend(tuple(item) if isinstance(item, list) else item for item in value)
            else:
                setattr(self, key, value)


class LimitDetector(Detector):
    def __init__(self, config: LimitAlarmConfig) -> None:
        self.config = config
        self.high_level = 0  # 0 none, 1 high, 2 high_high
        self.low_level = 0

    def _judge(self, t_ns: int, value: float) -> Verdict:
        c = self.config
        # A level is entered above its limit and left only below limit - deadband (and mirrored).
        highs = [(1, c.high), (2, c.high_high)]
        lows = [(1, c.low), (2, c.low_low)]
        self.high_level = max(
            (
                lvl
                for lvl, lim in highs
                if lim is not None
                and (value > lim or (self.high_level >= lvl and value >= lim - c.deadband))
            ),
            default=0,
        )
        self.low_level = max(
            (
                lvl
                for lvl, lim in lows
                if lim is not None
                and (value < lim or (self.low_level >= lvl and value <= lim + c.deadband))
            ),
            default=0,
        )
        level = {2: "high_high", 1: "high"}.get(self.high_level) or {2: "low_low", 1: "low"}.get(
            self.low_level
        )
        if level is None:
            return Verdict(False)
        return Verdict(
            True, level, None, **_described("limit", level=level, limit=getattr(c, level))
        )


class VibrationZoneDetector(Detector):
    def __init__(self, config: VibrationZoneAlarmConfig) -> None:
        self.config = config
        if config.boundaries is not None:
            self.bounds = tuple(config.boundaries)
        else:
            assert config.machine_group is not None and config.foundation is not None
            self.bounds = ISO_10816_3[(config.machine_group, config.foundation)]
        self.zone: str | None = None

    def _judge(self, t_ns: int, value: float) -> Verdict:
        zone = "A"
        for name, bound in zip("BCD", self.bounds, strict=True):
            # Going down, a zone is left only `deadband` below its lower boundary.
            was_in = self.zone is not None and self.zone >= name
            if value >= bound or (was_in and value >= bound - self.config.deadband):
                zone = name
        condition = None
        if zone != self.zone:
            condition = {
                "zone": zone,
                "previous_zone": self.zone,
                "boundaries_mm_s": list(self.bounds),
            }
        self.zone = zone
        detail = _described("zone", zone=zone, c_from=self.bounds[1], d_from=self.bounds[2])
        return Verdict(zone in ("C", "D"), zone, None, condition=condition, **detail)


class _BaselineMixin(Detector):
    """μ0 and σ as configured, or learnt from the first `baseline_samples` samples."""

    mean: float | None
    sigma: float | None
    learning: list[float]

    def _init_baseline(self, config: EwmaAlarmConfig | CusumAlarmConfig) -> None:
        self.mean, self.sigma = config.mean, config.sigma
        self.learning = []
        self.needed = config.baseline_samples or 0

    def _learn(self, value: float) -> bool:
        """True once a baseline is known; while learning, take the sample in."""
        if self.mean is not None and self.sigma is not None:
            return True
        self.learning.append(value)
        if len(self.learning) >= self.needed:
            self.mean = statistics.fmean(self.learning)
            self.sigma = statistics.stdev(self.learning) or 1e-12
            self.learning = []
        return False


class EwmaDetector(_BaselineMixin):
    def __init__(self, config: EwmaAlarmConfig) -> None:
        self.config = config
        self._init_baseline(config)
        self.z: float | None = None
        self.t = 0

    def _judge(self, t_ns: int, value: float) -> Verdict:
        if not self._learn(value):
            return Verdict(False, **_described("learning"))
        assert self.mean is not None and self.sigma is not None
        lam, width = self.config.lambda_, self.config.L
        self.t += 1
        self.z = lam * value + (1 - lam) * (self.mean if self.z is None else self.z)
        spread = width * self.sigma * math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * self.t)))
        low, high = self.mean - spread, self.mean + spread
        level = "high" if self.z > high else "low" if self.z < low else None
        detail = _described("ewma", z=self.z, low=low, high=high)
        return Verdict(level is not None, level, self.z, **detail)


class CusumDetector(_BaselineMixin):
    def __init__(self, config: CusumAlarmConfig) -> None:
        self.config = config
        self._init_baseline(config)
        self.upper = 0.0
        self.lower = 0.0

    def _judge(self, t_ns: int, value: float) -> Verdict:
        if not self._learn(value):
            return Verdict(False, **_described("learning"))
        assert self.mean is not None and self.sigma is not None
        k, h = self.config.k * self.sigma, self.config.h * self.sigma
        self.upper = max(0.0, value - (self.mean + k) + self.upper)
        self.lower = max(0.0, (self.mean - k) - value + self.lower)
        level = "high" if self.upper > h else "low" if self.lower > h else None
        statistic = self.upper if self.upper >= self.lower else -self.lower
        detail = _described("cusum", upper=self.upper, lower=self.lower, h=h)
        return Verdict(level is not None, level, statistic, **detail)

    def reset(self) -> None:
        self.upper = self.lower = 0.0


class _Window(Detector):
    """Samples of the last window_s seconds, and their least-squares line."""

    window: deque[tuple[int, float]]

    def _push(self, t_ns: int, value: float, window_s: float) -> None:
        self.window.append((t_ns, value))
        while self.window and self.window[0][0] < t_ns - window_s * NS:
            self.window.popleft()

    def _covers(self, seconds: float) -> bool:
        return (self.window[-1][0] - self.window[0][0]) / NS >= seconds

    def _fit(self) -> tuple[float, float, float] | None:
        """(slope per second, value of the line at the newest sample, r²), or None if too few."""
        if len(self.window) < 3:
            return None
        t0 = self.window[0][0]
        xs = [(t - t0) / NS for t, _ in self.window]
        ys = [v for _, v in self.window]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return None
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        syy = sum((y - my) ** 2 for y in ys)
        slope = sxy / sxx
        r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 1.0
        return slope, my + slope * (xs[-1] - mx), r2


class RateDetector(_Window):
    def __init__(self, config: RateAlarmConfig) -> None:
        self.config = config
        self.window = deque()

    def _judge(self, t_ns: int, value: float) -> Verdict:
        self._push(t_ns, value, self.config.window_s)
        fit = self._fit() if self._covers(self.config.window_s / 2) else None
        if fit is None:
            return Verdict(False)
        slope = fit[0]
        limit, direction = self.config.max_rate, self.config.direction
        rising = slope > limit and direction in ("rising", "both")
        falling = slope < -limit and direction in ("falling", "both")
        level = "rising" if rising else "falling" if falling else None
        detail = _described("rate", slope=slope, limit=limit)
        return Verdict(level is not None, level, slope, **detail)


class TrendDetector(_Window):
    def __init__(self, config: TrendAlarmConfig) -> None:
        self.config = config
        self.window = deque()
        self.last_report_ns: int | None = None
        self.last_active = False

    def _judge(self, t_ns: int, value: float) -> Verdict:
        c = self.config
        self._push(t_ns, value, c.window_s)
        # A line through a few seconds of noise predicts nothing: half a window at least.
        fit = self._fit() if self._covers(c.window_s / 2) else None
        left: float | None = None
        condition: dict[str, Any] = {"limit": c.limit}
        if fit is not None:
            slope, fitted, r2 = fit
            condition.update(slope_per_s=slope, fitted=fitted, r2=r2)
            sign = 1.0 if c.side == "high" else -1.0
            if sign * (fitted - c.limit) >= 0:
                left = 0.0  # already there
            elif sign * slope > 0 and r2 >= c.min_r2:
                left = (c.limit - fitted) / slope  # heading there, and the line fits
                if not math.isfinite(left):
                    left = None  # a slope so flat that the limit is never reached
        if left is not None:
            condition["time_to_limit_s"] = left
        active = left is not None and left < c.warn_before_s
        due = self.last_report_ns is None or t_ns - self.last_report_ns >= c.report_interval_s * NS
        report = fit is not None and (due or active != self.last_active)
        if report:
            self.last_report_ns = t_ns
        self.last_active = active
        detail = _described("trend", hours=left / 3600, limit=c.limit) if left is not None else {}
        level = "trend" if active else None
        return Verdict(active, level, left, condition=condition if report else None, **detail)


class RunHoursDetector(Detector):
    """Hours while `running` holds; `update` gets 1.0 or 0.0 for the rule at each instant."""

    def __init__(self, config: RunHoursAlarmConfig) -> None:
        self.config = config
        self.hours = 0.0
        self.since_ns: int | None = None  # running since (last accounted instant), or None

    def _judge(self, t_ns: int, value: float) -> Verdict:
        self.advance(t_ns)
        self.since_ns = t_ns if value else None
        return self._verdict()

    def advance(self, t_ns: int) -> Verdict:
        if self.since_ns is not None and t_ns > self.since_ns:
            self.hours += (t_ns - self.since_ns) / NS / 3600
            self.since_ns = t_ns
        return self._verdict()

    def due_ns(self) -> int | None:
        """When the interval will be reached if it keeps running: an instant to wake up at."""
        if self.since_ns is None or self.hours >= self.config.interval_h:
            return None
        return self.since_ns + math.ceil((self.config.interval_h - self.hours) * 3600 * NS)

    def _verdict(self) -> Verdict:
        due = self.hours >= self.config.interval_h - 1e-9
        detail = _described("run_hours", hours=self.hours, interval=self.config.interval_h)
        return Verdict(due, "due" if due else None, self.hours, **detail)

    def reset(self) -> None:
        self.hours = 0.0


class CyclesDetector(Detector):
    """Cycles from a cumulative counter (deltas, wrap with modulus) or from rising edges of a bool."""

    def __init__(self, config: CyclesAlarmConfig, *, edges: bool) -> None:
        self.config = config
        self.edges = edges  # a bool tag: count rising edges; otherwise a cumulative counter
        self.cycles = 0
        self.last: float | None = None

    def _judge(self, t_ns: int, value: float) -> Verdict:
        last, self.last = self.last, value
        if last is not None and self.edges:
            self.cycles += int(value > last)
        elif last is not None:
            delta = value - last
            if delta < 0:  # a wrap when the counter declares its modulus, else a reset
                delta = delta + self.config.modulus if self.config.modulus else value
            self.cycles += round(delta)
        due = self.cycles >= self.config.interval
        detail = _described("cycles", cycles=self.cycles, interval=self.config.interval)
        return Verdict(due, "due" if due else None, float(self.cycles), **detail)

    def reset(self) -> None:
        self.cycles = 0


def has_non_finite(value: Any) -> bool:
    """True when a number in `value` (nested dicts, lists, tuples) is NaN or infinite."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple | deque):
        return any(has_non_finite(v) for v in value)
    return False


def make_detector(config: AlarmConfig, *, bool_tag: bool = False) -> Detector:
    if isinstance(config, CyclesAlarmConfig):
        return CyclesDetector(config, edges=bool_tag)
    kinds: dict[type, Callable[[Any], Detector]] = {
        LimitAlarmConfig: LimitDetector,
        VibrationZoneAlarmConfig: VibrationZoneDetector,
        EwmaAlarmConfig: EwmaDetector,
        CusumAlarmConfig: CusumDetector,
        RateAlarmConfig: RateDetector,
        TrendAlarmConfig: TrendDetector,
        RunHoursAlarmConfig: RunHoursDetector,
    }
    return kinds[type(config)](config)
