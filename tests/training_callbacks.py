"""Trainer callbacks the tuner tests share: the losses a run logs, the steps it takes, and a stop at a given step."""

from __future__ import annotations

from transformers import TrainerCallback


class Losses(TrainerCallback):
    """Every training loss the trainer logs, in order."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


class Steps(TrainerCallback):
    """The global step at the end of every step the trainer runs (a resumed run starts after its checkpoint)."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)


class Stopped(Exception):
    """Raised out of the trainer by StopAt, as a Ctrl-C would be."""


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Stopped
