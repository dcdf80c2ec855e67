"""A stamping press, simulated: cycles, micro-stops, faults, idle spells, heat and bearing wear.

Pure model: `advance(now_s)` moves it to a wall-clock instant, `readings()` says what its sensors
and counters show, `write(image)` puts that into registers. It moves from event to event (a cycle
ends, a stop ends, the bearing fails), with heat and wear in closed form in between, so a
simulated day takes a fraction of a second. The sensors' noise has a random generator of its own:
the same seed gives the same cycles, stops and faults however often the press is read.

Bearing wear is counted in the mm/s of vibration it adds. It warms the spindle only a little
(0.5 °C per mm/s) and leaves the drive current alone, which the stamping load sets: in the demo
the vibration alarms warn, while the spindle temperature and motor current alarms stay quiet.
"""

from __future__ import annotations

__all__ = ["FAILURE_MM_S", "FAULTS", "PRESS_REGISTERS", "PressModel", "PressReadings"]

import math
import random
from dataclasses import dataclass, field
from typing import TypedDict

from drivers.sim.image import RegisterImage

FAULTS = {
    1: "Die jam",
    2: "Material feed error",
    3: "Hydraulic pressure low",
    4: "Safety door opened",
    5: "Main bearing overload",
}

# Where the press keeps its data (wire addresses); configs/demo.yaml reads the same map.
PRESS_REGISTERS = {
    "running": ("coil", 0, "bool"),
    "door_closed": ("discrete_input", 0, "bool"),
    "fault_code": ("holding", 0, "uint16"),
    "total_count": ("holding", 2, "uint32"),
    "good_count": ("holding", 4, "uint32"),
    "stroke_counter16": ("holding", 6, "uint16"),
    "spindle_temp_c": ("input", 0, "float32"),
    "vibration_mm_s": ("input", 2, "float32"),
    "motor_current_da": ("input", 4, "uint16"),
}

FAILURE_MM_S = 7.1  # the bearing fails at this vibration
_CATCH_UP_S = 3600.0  # of a longer gap (the host slept), only the last hour is caught up
_AMBIENT_C = 24.0
_RUNNING_HEAT_C = 42.0  # above ambient while running
_WEAR_HEAT_C = 0.5  # per mm/s of wear
_HEAT_TIME_S = 180.0  # time constant of the spindle's temperature
_VIBRATION_MM_S = (1.6, 0.25)  # running (plus the wear), stopped
_CURRENT_A = (18.5, 2.1)  # running, stopped
_CURRENT_NOISE_A = (0.25, 0.05)  # the load varies from stroke to stroke; a stopped drive idles


class PressReadings(TypedDict):
    running: bool
    door_closed: bool
    fault_code: int
    total_count: int
    good_count: int
    spindle_temp_c: float
    vibration_mm_s: float
    motor_current_a: float


@dataclass
class PressModel:
    seed: int = 1
    ideal_cycle_time_s: float = 1.0
    wear_per_hour: float = 0.0  # bearing wear: mm/s of vibration added per running hour
    start_s: float = 0.0
    rng: random.Random = field(init=False)  # what the press does
    noise: random.Random = field(init=False)  # what its sensors add
    t: float = field(init=False)
    state: str = field(init=False, default="running")
    state_until: float = field(init=False, default=0.0)
    next_cycle_at: float = field(init=False)
    fault_code: int = field(init=False, default=0)
    total: int = field(init=False, default=0)
    good: int = field(init=False, default=0)
    temp_c: float = field(init=False, default=_AMBIENT_C)
    wear: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.noise = random.Random(f"{self.seed} noise")
        self.t = self.start_s
        self.next_cycle_at = self.t + self._cycle()

    def advance(self, now_s: float) -> None:
        self.t = max(self.t, now_s - _CATCH_UP_S)
        while self.t < now_s:
            self._move_to(min(self._next_event_s(), now_s))

    def advance_to_change(self, limit_s: float) -> None:
        """Advance to the next change of state (a stop begins or ends) or to limit_s, if sooner."""
        before = (self.state, self.fault_code)
        while self.t < limit_s and (self.state, self.fault_code) == before:
            self._move_to(min(self._next_event_s(), limit_s))

    def stand_until(self, t_s: float) -> None:
        """People stop the press until t_s (a break); it runs again then. A fault's repair goes on."""
        if self.state != "fault" and t_s > self.t:
            self._enter("standing", t_s - self.t)

    def readings(self) -> PressReadings:
        """What the sensors and counters show now, noise included."""
        running = self.state == "running"
        at = 0 if running else 1
        return {
            "running": running,
            "door_closed": self.fault_code != 4,
            "fault_code": self.fault_code,
            "total_count": self.total,
            "good_count": self.good,
            "spindle_temp_c": self.temp_c + self.noise.gauss(0, 0.15),
            "vibration_mm_s": max(0.05, self._vibration() + self.noise.gauss(0, 0.08)),
            "motor_current_a": max(0.0, _CURRENT_A[at] + self.noise.gauss(0, _CURRENT_NOISE_A[at])),
        }

    def write(self, image: RegisterImage) -> None:
        r = self.readings()
        image.set("coil", 0, r["running"])
        image.set("discrete_input", 0, r["door_closed"])
        image.set_u16("holding", 0, self.fault_code)
        image.set_u32("holding", 2, self.total)
        image.set_u32("holding", 4, self.good)
        image.set_u16("holding", 6, self.total % 65536)
        image.set_f32("input", 0, r["spindle_temp_c"])
        image.set_f32("input", 2, r["vibration_mm_s"])
        image.set_u16("input", 4, round(r["motor_current_a"] * 10))

    def _vibration(self) -> float:
        running, stopped = _VIBRATION_MM_S
        return running + self.wear if self.state == "running" else stopped

    def _cycle(self) -> float:
        return self.ideal_cycle_time_s * self.rng.uniform(1.04, 1.30)

    def _next_event_s(self) -> float:
        if self.state != "running":
            return max(self.state_until, self.t)
        if self.wear_per_hour <= 0:
            return self.next_cycle_at
        failure = self.t + max(0.0, FAILURE_MM_S - self._vibration()) / self.wear_per_hour * 3600
        return min(self.next_cycle_at, failure)

    def _move_to(self, t: float) -> None:
        """Heat and wear up to t, then what happens at t: a stop ends, a cycle ends, a failure."""
        running = self.state == "running"
        target = _AMBIENT_C + (_RUNNING_HEAT_C + _WEAR_HEAT_C * self.wear if running else 0.0)
        self.temp_c = target + (self.temp_c - target) * math.exp(-(t - self.t) / _HEAT_TIME_S)
        if running:
            self.wear += self.wear_per_hour * (t - self.t) / 3600.0
        self.t = t
        if not running:
            if t >= self.state_until:
                self._enter("running", 0.0)
        elif self._vibration() >= FAILURE_MM_S - 1e-9:  # rounding of the wear's sum
            self._enter("fault", self.rng.uniform(300, 600), code=5)
            self.wear = 0.0  # the bearing is replaced during the repair
        elif t >= self.next_cycle_at:
            self._complete_cycle()

    def _complete_cycle(self) -> None:
        self.total += 1
        if self.rng.random() < 0.975:
            self.good += 1
        self.next_cycle_at = self.t + self._cycle()
        roll = self.rng.random()
        if roll < 1 / 90:
            self._enter("microstop", self.rng.uniform(4, 40))
        elif roll < 1 / 90 + 1 / 600:
            self._enter("fault", self.rng.uniform(45, 240), code=self.rng.randint(1, 4))
        elif roll < 1 / 90 + 1 / 600 + 1 / 900:
            self._enter("idle", self.rng.uniform(30, 120))

    def _enter(self, state: str, duration_s: float, code: int = 0) -> None:
        self.state = state
        self.state_until = self.t + duration_s
        self.fault_code = code
        if state == "running":
            self.next_cycle_at = self.t + self._cycle()
