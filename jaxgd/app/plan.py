"""Planning the report: from a checked :class:`~jaxgd.app.config.ReportConfig` to the problem and
every run, each checked once by :func:`jaxgd.runs.check_run_args` and handed on as its record.

The notebook's problem runs every optimizer under its three sampling modes (full batch, SGD,
minibatch); a landscape has no data, so one mode (an epoch is one step).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from jaxgd._checks import ArgumentError
from jaxgd.app import presets
from jaxgd.app.config import ReportConfig
from jaxgd.catalog import problem as make_problem
from jaxgd.engine import Trajectory
from jaxgd.problems import Problem
from jaxgd.runs import RunConfig, check_run_args


class Run(NamedTuple):
    """One run of the report: its optimizer, sampling mode, learning rate, epochs and checked
    record; once computed (:func:`jaxgd.app.report.compute`), its trajectory (NumPy leaves)."""

    optimizer: str
    mode: presets.Mode
    lr: float
    epochs: int
    config: RunConfig
    traj: Trajectory | None = None

    @property
    def label(self) -> str:
        return f"{self.optimizer} · {self.mode.label}"

    @property
    def steps(self) -> int:
        return self.config.steps


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything the report will compute: the config, the problem (built once) and the runs."""

    config: ReportConfig
    problem: Problem
    runs: tuple[Run, ...]

    @property
    def total_steps(self) -> int:
        return sum(r.steps for r in self.runs)


def modes(cfg: ReportConfig, problem: Problem) -> tuple[presets.Mode, ...]:
    """The notebook's three modes, with the configured minibatch size and seed; a landscape's one."""
    if problem.num_examples is None:
        return (presets.LANDSCAPE_MODE,)
    out = []
    for m in presets.MODES:
        if m.name == "minibatch" and cfg.batch_size != m.batch_size:
            m = m._replace(batch_size=cfg.batch_size, label=f"minibatch (batch {cfg.batch_size})")
        if cfg.seed is not None:
            m = m._replace(seed=cfg.seed)
        out.append(m)
    return tuple(out)


BIG_DATA = 10_000  # examples; above it the report's presets take one epoch per minibatch run and skip the sweeps


def run_settings(cfg: ReportConfig, problem: Problem, optimizer: str, mode: presets.Mode) -> tuple[float, int]:
    """``(lr, epochs)`` of one run: the presets (on more than :data:`BIG_DATA` examples, one
    epoch for SGD and minibatches: the presets' 2 to 15 epochs are for the notebook's 51
    points), overridden by the config."""
    lr, epochs = presets.settings(optimizer, mode.name, cfg.problem if problem.num_examples is None else None)
    if isinstance(cfg.lr, dict):
        lr = cfg.lr.get(optimizer, lr)
    elif cfg.lr is not None:
        lr = cfg.lr
    if cfg.epochs is not None:
        return lr, cfg.epochs
    if big_data(problem) and mode.batch_size is not None:
        epochs = 1
    return lr, epochs


def big_data(problem: Problem) -> bool:
    """More examples than the sweeps and explorables can afford (:data:`BIG_DATA`): each of their
    thousands of runs takes a full-data loss at every step, so on 10⁶ examples they would take minutes."""
    return problem.num_examples is not None and problem.num_examples > BIG_DATA


def plan(cfg: ReportConfig) -> Plan:
    """Build the problem (:func:`jaxgd.problem`, the one factory) and check every run; raises
    :class:`jaxgd.ArgumentError` naming the setting (also one that would change nothing). The plan's
    config holds the minibatch size (default 8, or n − 1 on n ≤ 8 examples) and data seed as run."""
    problem = make_problem(cfg.problem, data=cfg.data, noise=cfg.noise, data_seed=cfg.data_seed or 0, dtype=cfg.dtype)
    m = problem.num_examples
    unused = {"data_seed": "is the seed of the notebook's noise: your own data (--data) has none"} if cfg.data else {}
    if m is None:
        unused = dict.fromkeys(("batch_size", "seed", "data_seed"), f"does not apply to problem {problem.name!r}, "
                                                                    "which has no data: its runs are full batch")
    for k, why in unused.items():
        if getattr(cfg, k) is not None:
            raise ArgumentError(k, why)
    batch = cfg.batch_size or (None if m is None else max(1, min(presets.MODES[-1].batch_size, m - 1)))
    cfg = dataclasses.replace(cfg, batch_size=batch, data_seed=cfg.data_seed or 0)
    runs = []
    for opt in cfg.optimizers:
        for md in modes(cfg, problem):
            lr, epochs = run_settings(cfg, problem, opt, md)
            rc = check_run_args(problem, opt, lr, epochs, md.batch_size, None, md.sampling, md.rng, md.seed,
                                loss_every=cfg.loss_every or "auto")
            runs.append(Run(opt, md, lr, epochs, rc))
    return Plan(cfg, problem, tuple(runs))
