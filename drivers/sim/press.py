"""A stamping press, simulated: cycles, micro-stops, faults, idle spells, heat and bearing wear.

Pure model: `advance(now_s)` moves it to a wall-clock instant and `write(image)` puts its state into
registers. It steps in short increments, so the same seed and the same read times give the same
press; between reads it catches up on everything that happened.
"""

from __future__ import annotations

__all__ = ["FAULTS", "PRESS_REGISTERS", "PressModel"]

import random
from dataclasses import dataclass, field

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

_STEP_S = 0.1
_AMBIENT_C = 24.0


@dataclass
class PressModel:
    seed: int = 1
    ideal_cycle_time_s: float = 1.0
    wear_per_hour: float = 0.0  # bearing wear: mm/s of vibration added per running hour
    start_s: float = 0.0
    rng: random.Random = field(init=False)
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
        self.t = self.start_s
        self.next_cycle_at = self.t + self._cycle()

    def advance(self, now_s: float) -> None:
        # A long gap (the host slept) is not replayed step by step for ever: an hour at most.
        self.t = max(self.t, now_s - 3600.0)
        while self.t < now_s:
            dt = min(_STEP_S, now_s - self.t)
            self.t += dt
            self._step(dt)

    def write(self, image: RegisterImage) -> None:
        running = self.state == "running"
        image.set("coil", 0, running)
        image.set("discrete_input", 0, self.fault_code != 4)
        image.set_u16("holding", 0, self.fault_code)
        image.set_u32("holding", 2, self.total)
        image.set_u32("holding", 4, self.good)
        image.set_u16("holding", 6, self.total % 65536)
        image.set_f32("input", 0, self.temp_c + self.rng.gauss(0, 0.15))
        image.set_f32("input", 2, max(0.05, self._vibration() + self.rng.gauss(0, 0.08)))
        current = 18.5 + 2.0 * self.wear if running else 2.1
        image.set_u16("input", 4, round(current * 10))

    def _vibration(self) -> float:
        return (1.6 + self.wear) if self.state == "running" else 0.25

    def _cycle(self) -> float:
        return self.ideal_cycle_time_s * self.rng.uniform(1.04, 1.30)

    def _step(self, dt: float) -> None:
        target = _AMBIENT_C + (42.0 + 6.0 * self.wear if self.state == "running" else 0.0)
        self.temp_c += (target - self.temp_c) * dt / 180.0
        if self.state != "running":
            if self.t >= self.state_until:
                self._enter("running", 0.0)
            return
        self.wear += self.wear_per_hour * dt / 3600.0
        if self._vibration() >= 7.1:
            self._enter("fault", self.rng.uniform(300, 600), code=5)
            self.wear = 0.0  # the bearing is replaced during the repair
            return
        if self.t >= self.next_cycle_at:
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
