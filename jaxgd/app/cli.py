"""The command line: parse, call the library, write files. No numerics live here.

``jaxgd report``    the main job: every optimizer × sampling mode as an offline HTML report + files
``jaxgd run``       one optimizer run (``--json PATH`` or ``-`` for the whole trajectory)
``jaxgd sweep``     final loss against learning rate, one compiled call per optimizer
``jaxgd grads``     jax.grad against the notebook's analytic gradient over the grid
``jaxgd landscape`` a real model's loss landscape on a plane through parameter space, with sharpness
``jaxgd notebook``  the notebook's printed numbers, and every optimizer × sampling mode

Bad arguments exit with status 2 and one line on stderr; nothing is written to stdout.
A fault of the environment (disk full, a closed stdout, a folder that cannot be written) exits
with status 1 and one line; Ctrl-C with 130, SIGTERM with 143 (``jaxgd: interrupted`` /
``jaxgd: terminated``). Either way no temporary file stays and earlier files are untouched.
"""

from __future__ import annotations

import argparse
import sys

from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.app import require_extra

FLAGS = {  # library argument name -> CLI flag, to phrase library errors in the user's terms
    "lr": "--lr", "epochs": "--epochs", "batch_size": "--batch-size", "init": "--init",
    "sampling": "--sampling", "rng": "--rng", "seed": "--seed", "optimizer": "--optimizer",
    "beta": "--beta", "decay": "--decay", "eps": "--eps", "b1": "--b1", "b2": "--b2",
    "noise": "--noise", "dtype": "--dtype", "optimizers": "--optimizers", "grid": "--grid",
    "data_seed": "--data-seed", "out": "--out", "data": "--data", "problem": "--problem",
    "schedule": "--schedule", "decay_rate": "--decay-rate", "config": "--config", "warmup": "--warmup", "final_fraction": "--final-fraction", "lr_min": "--lr-min", "lr_max": "--lr-max", "num": "--num",
    "target": "--target", "task": "--task", "spec": "--model", "activation": "--activation", "plane": "--plane",
    "sharpness_every": "--sharpness-every", "loss_every": "--loss-every", "loss": "--loss", "json": "--json",
}
HYPER = ("beta", "decay", "eps", "b1", "b2")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _flagged(err: Exception) -> str:
    """An error in the user's terms: a named argument's error with its flag (``batch_size`` →
    ``--batch-size``); other errors as they are."""
    if isinstance(err, (ArgumentError, ArgumentTypeError)):
        return f"{FLAGS.get(err.name, err.name)} {err.detail}"
    return str(err)


def _init_pair(text: str):
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be two numbers W,b (e.g. --init=-4,-7), got {text!r}")
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers W,b (e.g. --init=-4,-7), got {text!r}") from None


def _landscape_names():
    from jaxgd.landscapes import LANDSCAPES

    return tuple(LANDSCAPES)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="working precision (default float64, as the notebook)")
    p.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to y (default 0)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of that noise (default 0)")
    p.add_argument("--data", default=None, metavar="FILE.csv",
                   help="fit your own data: two numeric columns x, y (a header row is optional)")
    p.add_argument("--problem", default="notebook",
                   help="notebook (default) or a landscape: " + ", ".join(_landscape_names()))


def _add_sampling(p: argparse.ArgumentParser, epochs: int) -> None:
    """The flags of one run's schedule and sample order, shared by run and sweep."""
    p.add_argument("--epochs", type=int, default=epochs, help=f"passes over the data (default {epochs})")
    p.add_argument("--batch-size", type=int, default=None, help="omit for full batch; 1 = SGD")
    p.add_argument("--sampling", default="shuffle", help="shuffle or replacement (default shuffle)")
    p.add_argument("--rng", default="jax", help="jax or numpy (the notebook's stream) (default jax)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample order (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxgd", description="See how gradient-descent optimizers move on a loss surface.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run one optimizer and print or save its trajectory")
    r.add_argument("--optimizer", default="gd",
                   help="gd, momentum, nesterov, rmsprop, adam, or optax:NAME (default gd)")
    r.add_argument("--lr", type=float, default=0.05, help="learning rate > 0 (default 0.05)")
    _add_sampling(r, epochs=20)
    r.add_argument("--init", type=_init_pair, default=None, metavar="W,b",
                   help="starting point, e.g. --init=-4,-7 (default: the problem's, (-4, -7) for the notebook)")
    for h in HYPER:
        r.add_argument(f"--{h}", type=float, default=None, help=f"{h} (for the optimizers that take it)")
    r.add_argument("--loss-every", type=int, default=None, metavar="K",
                   help="the full-data loss at every K-th step (default: automatic, every step unless the data "
                        "are more than 100 batches)")
    r.add_argument("--schedule", default="constant",
                   help="learning-rate schedule: constant (default), exponential, cosine, warmup-cosine")
    r.add_argument("--decay-rate", type=float, default=0.99, help="exponential: lr·rate^step (default 0.99)")
    r.add_argument("--warmup", type=int, default=None, help="warmup-cosine: warmup steps (default a tenth)")
    r.add_argument("--final-fraction", type=float, default=0.0,
                   help="cosine, warmup-cosine: final lr as a fraction of --lr (default 0)")
    r.add_argument("--json", metavar="PATH", default=None, help="write the trajectory as JSON; - for stdout")
    _add_common(r)

    g = sub.add_parser("grads", help="compare jax.grad with the analytic gradient over the grid")
    g.add_argument("--grid", type=int, default=101, help="points per axis over the problem's plot ranges (default 101)")
    _add_common(g)

    rp = sub.add_parser("report", help="the main job: every optimizer × sampling mode, as an offline report")
    rp.add_argument("--optimizers", default=None,
                    help="comma list (default gd,momentum,rmsprop,adam); any of gd, momentum, nesterov, rmsprop, "
                         "adam, optax:NAME")
    rp.add_argument("--lr", type=float, default=None, help="one learning rate for every run (default: presets)")
    rp.add_argument("--epochs", type=int, default=None, help="epochs for every run (default: presets)")
    rp.add_argument("--loss-every", type=int, default=None, metavar="K",
                    help="the full-data loss at every K-th step (default: automatic)")
    rp.add_argument("--batch-size", type=int, default=None, help="the minibatch mode's batch size (default 8)")
    rp.add_argument("--seed", type=int, default=None,
                    help="sample-order seed for every mode (default: the notebook's, 2 for SGD and 1 for minibatch)")
    rp.add_argument("--noise", type=float, default=None, help="std of noise added to the fitted y (default 0)")
    rp.add_argument("--data-seed", type=int, default=None, help="seed of the data noise (default 0)")
    rp.add_argument("--data", default=None, metavar="FILE.csv", help="fit your own data: two numeric columns x, y")
    rp.add_argument("--problem", default=None, help="notebook (default) or a landscape: " + ", ".join(_landscape_names()))
    rp.add_argument("--grid", type=int, default=None, help="surface points per axis (default 101)")
    rp.add_argument("--dtype", choices=("float64", "float32"), default=None, help="default float64")
    rp.add_argument("--out", default=None, help="output folder (default out/)")
    rp.add_argument("--config", default=None, metavar="FILE.toml", help="read settings from a TOML file; "
                    "flags override it")
    rp.add_argument("--gif", action="store_true", default=None, help="also write paths.gif (matplotlib)")
    rp.add_argument("--png", dest="png", action="store_true", default=None,
                    help="also write the figures as PNGs (matplotlib; off by default: it triples the time)")
    rp.add_argument("--no-png", dest="png", action="store_false", default=None, help="no PNGs (the default)")
    rp.add_argument("--no-sweep", dest="sweep", action="store_false", default=None,
                    help="skip the learning-rate sweep section")

    sw = sub.add_parser("sweep", help="final loss against learning rate for each optimizer (one compiled call each)")
    sw.add_argument("--optimizers", default="gd,momentum,rmsprop,adam", help="comma list (default gd,momentum,rmsprop,adam)")
    sw.add_argument("--lr-min", type=float, default=1e-3, help="smallest learning rate (default 1e-3)")
    sw.add_argument("--lr-max", type=float, default=10.0, help="largest learning rate (default 10)")
    sw.add_argument("--num", type=int, default=121, help="learning rates, log-spaced (default 121)")
    _add_sampling(sw, epochs=100)
    sw.add_argument("--out", default="out/sweep", help="output folder (default out/sweep/, apart from the report's "
                    "files in out/)")
    sw.add_argument("--no-png", dest="png", action="store_false", help="skip sweep.png")
    _add_common(sw)

    ls = sub.add_parser("landscape", help="a real model's loss landscape on a plane, with the paths and sharpness")
    ls.add_argument("--data", default="digits", metavar="NAME|FILE.csv",
                    help="digits (default), iris, diabetes, breast_cancer (scikit-learn's), or a CSV of numeric "
                         "features and a target")
    ls.add_argument("--target", default=None, help="the CSV's target column (default: its last column)")
    ls.add_argument("--task", default=None, help="regression or classification (default: inferred from the target)")
    ls.add_argument("--model", default="mlp:32", help="mlp:H1,H2,... hidden widths (default mlp:32)")
    ls.add_argument("--activation", default="tanh", help="tanh (default), relu, gelu, sigmoid, softplus, identity")
    ls.add_argument("--loss", default="xent", help="classification's loss: xent (softmax cross-entropy, default) or "
                                                   "mse (squared error against one-hot targets)")
    ls.add_argument("--optimizers", default="gd,momentum,adam", help="comma list (default gd,momentum,adam)")
    ls.add_argument("--lr", default="0.5,0.5,0.01", help="one learning rate, or one per optimizer, comma-separated "
                                                          "(default 0.5,0.5,0.01)")
    ls.add_argument("--epochs", type=int, default=100, help="passes over the data (default 100)")
    ls.add_argument("--batch-size", type=int, default=None, help="omit for full batch")
    ls.add_argument("--plane", default="pca", help="pca (default), random (filter-normalised) or hessian")
    ls.add_argument("--grid", type=int, default=51, help="points per axis of the plane (default 51)")
    ls.add_argument("--sharpness-every", type=int, default=10, help="measure the sharpness every k steps; 0: never "
                                                                    "(default 10)")
    ls.add_argument("--seed", type=int, default=0, help="seed of the model's init, the sample order and the plane")
    ls.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64")
    ls.add_argument("--out", default="out", help="output folder (default out/): landscape.html, .json, .npz, PNGs")
    ls.add_argument("--no-png", dest="png", action="store_false", help="skip the PNGs")

    n = sub.add_parser("notebook", help="the notebook's numbers, and every optimizer × sampling mode")
    n.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    return parser


def _setup_dtype(dtype: str) -> None:
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    _setup_cache()


def _setup_cache() -> None:
    """JAX's persistent compilation cache, so a second ``jaxgd`` command skips compiling, and in its
    ``programs`` subfolder jaxgd's own cache of compiled runs (:mod:`jaxgd.app.program_cache`), so it
    also skips tracing them.

    In ``$JAXGD_CACHE_DIR`` (default ``$HOME/.cache/jaxgd/xla``); ``JAXGD_CACHE_DIR=off`` disables both.
    Without ``$JAXGD_CACHE_DIR``, and with ``$HOME`` unset or not an existing folder, there is no
    cache (jaxgd never creates a home folder); nor when the folder cannot be made (a file in its
    place, a path under /proc): the command runs as without a cache.
    """
    import os

    import jax

    d = os.environ.get("JAXGD_CACHE_DIR")
    if d is None:
        home = os.environ.get("HOME")
        if not home or not os.path.isdir(home):
            return
        d = os.path.join(home, ".cache", "jaxgd", "xla")
    if d.strip().lower() in ("", "0", "off", "none", "false"):
        return
    try:  # a file in its place, a folder under /proc, a dangling link: no cache, rather than JAX's warnings
        os.makedirs(d, exist_ok=True)
    except OSError:
        return
    if not os.path.isdir(d):
        return
    jax.config.update("jax_compilation_cache_dir", d)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    from jaxgd.app import program_cache

    program_cache.enable(os.path.join(d, "programs"))
    from jaxgd.app import shell

    shell.PACK_DIR = os.path.join(d, "page")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so every ``finally`` removes its temporaries."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _echo(*parts, sep: str = " ", end: str = "\n") -> None:
    """``print`` to stdout: in ASCII spellings where stdout's encoding lacks a character (``×`` → ``x``,
    ``λ`` → ``lambda``); a closed or full stdout raises :class:`~jaxgd.app.files.OutputError`."""
    from jaxgd.app.files import write_stdout

    text = sep.join(map(str, parts)) + end
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(enc)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(_ASCII)
        try:
            text = text.encode(enc, "replace").decode(enc)
        except LookupError:
            text = text.encode("ascii", "replace").decode("ascii")
    write_stdout(text)


_ASCII = str.maketrans({"×": "x", "λ": "lambda", "²": "^2", "·": "*", "—": "-", "–": "-", "→": "->", "≤": "<=",
                        "≥": ">=", "…": "...", "√": "sqrt", "±": "+/-", "β": "beta", "α": "alpha", "ε": "eps",
                        "ρ": "rho", "∞": "inf", "≈": "~", "−": "-"})


def _needs_stdout(args) -> bool:
    """True when stdout is the command's only output (``run`` without ``--json FILE``, ``grads``, ``notebook``)."""
    return args.command in ("grads", "notebook") or (args.command == "run" and args.json in (None, "-"))


def main(argv=None) -> int:
    import os
    import signal
    import threading

    from jaxgd.app.files import OutputError

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # e.g. started in the background
        signal.signal(signal.SIGINT, signal.default_int_handler)
    old_term = None
    if main_thread and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    cmds = {"run": _cmd_run, "grads": _cmd_grads, "notebook": _cmd_notebook, "report": _cmd_report,
            "sweep": _cmd_sweep, "landscape": _cmd_landscape}
    stdout = sys.stdout
    try:
        if sys.stdout is None:  # started with stdout closed (`jaxgd run >&-`)
            if _needs_stdout(args):
                raise OutputError("stdout", "it is closed, and it is this command's only output")
            sys.stdout = open(os.devnull, "w")  # the files are the output; the summary has nowhere to go
        if args.command != "report":  # the report reads its dtype from the config file too
            _setup_dtype(args.dtype)
        code = cmds[args.command](parser, args)
        _flush_stdout()
        return code
    except (ArgumentError, ArgumentTypeError) as e:  # raised by the checks, before any work
        parser.error(_flagged(e))
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        _stderr("jaxgd: terminated" if terminated else "jaxgd: interrupted")
        return 143 if terminated else 130
    except BrokenPipeError:  # e.g. `jaxgd grads | head`: the reader left; stop quietly
        _quiet_stdout()
        return 1
    except OutputError as e:  # a fault of the environment, not of the arguments
        if e.path == "stdout":
            _quiet_stdout()
        _stderr(f"jaxgd: {e}")
        return 1
    except OSError as e:  # any other fault of the environment: one line, no traceback
        where = f" ({e.filename})" if e.filename else ""
        _stderr(f"jaxgd: {e.strerror or e}{where}")
        return 1
    except MemoryError:
        _stderr("jaxgd: out of memory: ask for fewer runs, steps or grid points")
        return 1
    except Exception as e:  # XLA's "Out of memory allocating N bytes" is a JaxRuntimeError
        if "out of memory" not in str(e).lower():
            raise
        _stderr("jaxgd: out of memory: " + str(e).strip().splitlines()[0][:200])
        return 1
    finally:
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _flush_stdout() -> None:
    from jaxgd.app.files import OutputError

    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError("stdout", e.strerror or str(e)) from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind it (e.g. under pytest)
        pass


def _stderr(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def _problem(args):
    """The problem of ``--problem``, ``--data``, ``--noise``, ``--data-seed``, ``--dtype``."""
    import jaxgd

    return jaxgd.problem("notebook" if args.problem == "notebook" and args.data is None else
                         "data" if args.problem == "notebook" else args.problem,
                         data=args.data, noise=args.noise, data_seed=args.data_seed, dtype=args.dtype)


def _data_note(data) -> None:
    """One line on stderr when the first row of a ``--data`` file was read as a header (the
    arguments are all checked by then: a bad one's error stays the only line)."""
    if data is None:
        return
    from jaxgd.datasets import read_xy

    f = read_xy(data)
    if f.header is not None:
        sep = {",": "comma", "\t": "tab", ";": "semicolon"}[f.separator]
        _stderr(f"jaxgd: --data {str(data)!r}: row 1 ({', '.join(f.header)}) read as a header; "
                f"{len(f.x)} rows of data, {sep}-separated")


def _cmd_run(parser, args) -> int:
    import jax

    import jaxgd
    from jaxgd.app.files import check_file_target, write_json
    from jaxgd.optim import make_schedule

    if args.json not in (None, "-"):
        check_file_target("json", args.json)
    problem = _problem(args)
    hyper = {h: getattr(args, h) for h in HYPER if getattr(args, h) is not None}
    cfg = jaxgd.runs.check_run_args(problem, args.optimizer, args.lr, args.epochs, args.batch_size, args.init,
                               args.sampling, args.rng, args.seed, hyper, loss_every=args.loss_every)
    cfg = cfg.with_lr(make_schedule(args.schedule, args.lr, cfg.steps, args.decay_rate, args.warmup,
                                    args.final_fraction))
    _data_note(args.data)
    t = jaxgd.runs.run_checked(cfg)
    div = int(t.diverged_at)
    config = {
        "lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "steps": cfg.steps,
        "sampling": args.sampling, "rng": args.rng, "seed": args.seed, "init": [float(v) for v in cfg.init],
        "loss_every": cfg.loss_every,
        "problem": problem.name, "hyper": {k: v for k, v in cfg.spec.hyper.items() if k != "lr"},
        "dtype": args.dtype, "noise": args.noise, "data_seed": args.data_seed,
        "device": jax.devices()[0].platform, "jaxgd": jaxgd.__version__,
        "schedule": {"kind": args.schedule, "decay_rate": args.decay_rate, "warmup": args.warmup,
                     "final_fraction": args.final_fraction},
    }
    if args.json is not None:
        write_json(args.json, {
            "optimizer": args.optimizer, "config": config,
            "final": {"w": t.final.w, "b": t.final.b},
            "params": {"w": t.params.w, "b": t.params.b},
            "loss": t.loss, "batch_loss": t.batch_loss,
            "diverged_at": None if div < 0 else div,
        })
        if args.json == "-":
            return 0
    w, b = float(t.final.w), float(t.final.b)
    state = "finite throughout" if div < 0 else f"diverged at step {div}"
    _echo(f"{args.optimizer}: {cfg.steps} steps on {config['device']} ({args.dtype}) -> "
          f"W = {w!r}, b = {b!r}, loss = {float(t.loss[-1])!r} ({state})")
    return 0


def _cmd_grads(parser, args) -> int:
    import numpy as np

    import jaxgd

    from jaxgd import _checks
    from jaxgd.app.config import GRID_MAX

    _checks.check_int("grid", args.grid, 2, GRID_MAX)
    problem = _problem(args)
    w = np.linspace(*problem.w_range, args.grid)
    b = np.linspace(*problem.b_range, args.grid)
    gc = jaxgd.grad_check(problem, w, b)
    _data_note(args.data)
    na, nb = problem.param_names
    _echo(f"jax.grad vs analytic gradient on a {args.grid}×{args.grid} grid over "
          f"{na} in {list(problem.w_range)}, {nb} in {list(problem.b_range)} ({args.dtype}):")
    _echo(f"  max abs error {gc.max_abs_error:.3e}, max rel error {gc.max_rel_error:.3e} "
          f"(worst at {na}={gc.worst.w:.4g}, {nb}={gc.worst.b:.4g})")
    _echo(f"  {na:>8} {nb:>8} | {f'dL/d{na} autodiff':>22} {f'dL/d{na} analytic':>22} | "
          f"{f'dL/d{nb} autodiff':>22} {f'dL/d{nb} analytic':>22}")
    n = args.grid
    for i, j in ((0, 0), (n // 4, 3 * n // 4), (n // 2, n // 2), (3 * n // 4, n // 4), (n - 1, n - 1)):
        _echo(f"  {w[i]:8.3f} {b[j]:8.3f} | {float(gc.autodiff.w[i, j]):22.15g} {float(gc.analytic.w[i, j]):22.15g} | "
              f"{float(gc.autodiff.b[i, j]):22.15g} {float(gc.analytic.b[i, j]):22.15g}")
    return 0


def _cmd_notebook(parser, args) -> int:
    from jaxgd.app.summary import notebook_numbers, optimizer_table

    for line in notebook_numbers(args.dtype):
        _echo(line)
    _echo()
    for line in optimizer_table():
        _echo(line)
    return 0


REPORT_KEYS = ("problem", "optimizers", "lr", "epochs", "batch_size", "seed", "noise", "data_seed", "data", "grid", "dtype",
               "out", "gif", "png", "sweep", "loss_every")


def report_plan(parser, args):
    """Defaults, then the TOML file, then the flags given; checked into a plan (the problem and
    every run). Raises ArgumentError on a bad value."""
    import dataclasses

    from jaxgd.app import config
    from jaxgd.app.files import check_folder_target
    from jaxgd.app.plan import plan

    values = config.load_toml(args.config) if args.config is not None else {}
    values.update({k: getattr(args, k) for k in REPORT_KEYS if getattr(args, k) is not None})
    cfg = config.check(dataclasses.replace(config.ReportConfig(), **values))
    check_folder_target("out", cfg.out, REPORT_FILES)
    _setup_dtype(cfg.dtype)
    p = plan(cfg)
    return p


REPORT_FILES = ("report.html", "results.json", "results.npz", "metrics.csv")  # checked before computing
SWEEP_FILES = ("sweep.json", "sweep.html", "sweep.png")


def _cmd_report(parser, args) -> int:
    import time

    t0 = time.perf_counter()
    p = report_plan(parser, args)
    from jaxgd.app import report
    from jaxgd.app.results import run_rows

    cfg = p.config
    _data_note(cfg.data)
    if report.big_data(p.problem) and (cfg.sweep or cfg.epochs is None):
        _stderr(f"jaxgd: --data has {p.problem.num_examples:,} examples: the report skips the sweeps and explorables"
                + ("" if cfg.epochs is not None else ", and SGD and minibatch runs take 1 epoch (--epochs to choose)"))
    bar = _progress_bar()
    stage = _stage_lines(p.total_steps) if bar is None else None
    if stage:
        stage(f"computing {len(p.runs)} runs ({p.total_steps:,} steps)" + (
            ", the sweeps and the explorables" if cfg.sweep and not report.big_data(p.problem) else ""))
    data = report.compute(p, callback=bar.update if bar else stage and _every_tenth(stage, p.total_steps))
    if bar:
        bar.close()
    if stage:
        stage(f"writing {cfg.out}")
    files = report.write(data, cfg.out, png=cfg.png, gif=cfg.gif)
    gc = data.grad_check
    _echo(f"jaxgd report: {len(data.runs)} runs on {data.meta['device']} ({cfg.dtype}); "
          f"jax.grad vs analytic: max rel error {gc.max_rel_error:.2e}")
    na, nb = data.problem.param_names
    for r in run_rows(data):
        state = r["why"] if r["state"] == "diverged" else r["state"] + ("" if r["state"] == "converged" else f": {r['why']}")
        _echo(f"  {r['optimizer']:<10} {r['mode']:<10} lr {r['lr']:<6g} {r['steps']:>5} steps  "
              f"{na} = {_num(r['final_w'])}  {nb} = {_num(r['final_b'])}  loss = {_num(r['final_loss'], '.3e')}  "
              f"{state}")
    _echo(f"wrote {', '.join(str(f) for f in files)} in {time.perf_counter() - t0:.1f} s")
    return 0


def _num(v, spec=None) -> str:
    """Right-aligned in 10 columns: :func:`jaxgd.app.summary.number`, or ``spec`` if given."""
    from jaxgd.app.summary import number

    return f"{'—' if v is None else format(v, spec) if spec else number(v):>10}"


def _stderr_is_terminal() -> bool:
    """False also for a closed stderr (``2>&-``: ``sys.stderr`` is None) or one that cannot say."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _progress_bar():
    """A tqdm bar over the steps of all runs, only when stderr is a terminal."""
    if not _stderr_is_terminal():
        return None
    from tqdm import tqdm

    class Bar:
        def __init__(self):
            self.t = None

        def update(self, done, total):
            if self.t is None:
                self.t = tqdm(total=total, unit="step", desc="runs", leave=False)
            self.t.update(done - self.t.n)

        def close(self):
            if self.t is not None:
                self.t.close()

    return Bar()


LONG_REPORT_STEPS = 100_000  # off a terminal, a report of this many steps or more says what it is doing


def _stage_lines(total_steps: int):
    """Off a terminal (no progress bar), for a long report: a function printing one line per stage to stderr."""
    if total_steps < LONG_REPORT_STEPS:
        return None

    def say(text):
        try:
            print(f"jaxgd: {text}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed or its reader gone: progress is not worth the results
            pass

    return say


def _every_tenth(say, total: int):
    """A progress callback printing a line at each tenth of the steps."""
    seen = [0]

    def update(done, _total):
        tenth = 10 * done // max(total, 1)
        if tenth > seen[0]:
            seen[0] = tenth
            say(f"runs {10 * tenth} % done ({done:,} of {total:,} steps)")

    return update


def _cmd_sweep(parser, args) -> int:
    import time

    import jax
    import numpy as np

    import jaxgd
    from jaxgd import _checks
    from jaxgd.app import config, plots
    from jaxgd.app.files import check_folder_target, dumps, write_all
    from jaxgd.app.results import sweep_doc, versions

    t0 = time.perf_counter()
    names = SWEEP_FILES if args.png else SWEEP_FILES[:2]
    check_folder_target("out", args.out, names)
    problem = _problem(args)
    optimizers = config.parse_optimizers(args.optimizers)
    lo = _checks.check_positive_number("lr_min", args.lr_min)
    hi = _checks.check_positive_number("lr_max", args.lr_max)
    if hi < lo:
        raise ArgumentError("lr_max", f"must be >= --lr-min ({lo!r}), got {hi!r}")
    num = _checks.check_int("num", args.num, 1, 1_000_000)

    # the first optimizer's sweep checks the rest (the same for every optimizer) before it computes
    sc = jaxgd.lr_scan(problem, optimizers, np.geomspace(lo, hi, num), epochs=args.epochs,
                       batch_size=args.batch_size, sampling=args.sampling, rng=args.rng, seed=args.seed)
    _data_note(args.data)
    device = jax.devices()[0].platform
    settings = {"optimizers": list(optimizers), "lr_min": lo, "lr_max": hi, "num": num, "epochs": args.epochs,
                "batch_size": args.batch_size, "sampling": args.sampling, "rng": args.rng, "seed": args.seed,
                "noise": args.noise, "data_seed": args.data_seed, "dtype": args.dtype}
    doc = sweep_doc(sc, settings, {"device": device, "versions": versions()})
    args_fig = (sc.lrs, sc.final_loss, sc.diverged_at, sc.stability_limit)
    writers = {
        "sweep.json": lambda p: _write_text(p, dumps(doc) + "\n"),
        "sweep.html": lambda p: plots.plotly_figs.sweep(*args_fig, optimal_lr=sc.optimal_lr).write_html(
            p, include_plotlyjs=True, full_html=True),
        "sweep.png": lambda p: plots.mpl_figs.sweep(*args_fig, optimal_lr=sc.optimal_lr).savefig(p, dpi=110,
                                                                                                 format="png"),
    }
    write_all(args.out, {k: writers[k] for k in names})
    _echo(f"jaxgd sweep: {num} learning rates in [{lo:g}, {hi:g}] × {len(optimizers)} optimizers, "
          f"{args.epochs} epochs each, on {device} ({args.dtype})")
    if sc.stability_limit is not None:
        _echo(f"  theory: full-batch gd is stable for lr < 2/λmax = {sc.stability_limit:.6g}")
    for k in optimizers:
        best = sc.best(k)
        best = "all diverged" if best is None else f"best lr {best[0]:.4g} (final loss {best[1]:.3e})"
        bnd = jaxgd.divergence_boundary(sc.lrs, sc.diverged_at[k])
        _echo(f"  {k:<12} {best}; " + ("no run diverged" if bnd is None else f"diverges from lr {bnd:.4g}"))
    _echo(f"wrote {', '.join(names)} into {args.out}/ in {time.perf_counter() - t0:.1f} s")
    return 0


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _cmd_landscape(parser, args) -> int:
    import time

    from jaxgd.app import landscape
    from jaxgd.app.files import check_folder_target

    t0 = time.perf_counter()
    cfg = landscape.LandscapeConfig(**{f.name: getattr(args, f.name) for f in
                                       __import__("dataclasses").fields(landscape.LandscapeConfig)})
    plan = landscape.check(cfg)
    check_folder_target("out", plan.config.out, landscape.FILES)
    bar = _stage_bar()
    data = landscape.compute(plan, progress=bar.update if bar else None)
    if bar:
        bar.close()
    files = landscape.write(data, plan.config.out, png=plan.config.png)
    m = data.meta
    _echo(f"jaxgd landscape: {plan.config.model} ({m['num_params']:,} parameters) on {plan.dataset.name} "
          f"({m['num_examples']} examples, {m['task']}), {plan.config.plane} plane, {plan.config.grid}² grid, "
          f"on {m['device']} ({plan.config.dtype})")
    if data.explained is not None:
        _echo(f"  PCA: the plane explains {100 * data.explained[0]:.1f} % + {100 * data.explained[1]:.1f} % of the "
              f"paths' variance (a random walk: {100 * data.random_walk_explained[0]:.1f} % + "
              f"{100 * data.random_walk_explained[1]:.1f} %)")
    for opt, r in landscape.summary(data).items():
        state = "" if r["diverged_at"] is None else f", diverged at step {r['diverged_at']}"
        lim = "" if r["stability_limit"] is None else f" (stable below {r['stability_limit']:.4g})"
        sharp = "" if r["final_sharpness"] is None else f", sharpness {r['final_sharpness']:.4g}{lim}"
        gap = "—" if r["max_loss_gap"] is None else f"{r['max_loss_gap']:.3g}"
        _echo(f"  {opt:<10} {r['steps']} steps, final loss {r['final_loss']:.4g}{state}{sharp}; "
              f"largest gap to the projection {gap}")
    _echo(f"wrote {', '.join(str(f) for f in files)} in {time.perf_counter() - t0:.1f} s")
    return 0


def _stage_bar():
    """A tqdm bar per stage (training each optimizer, the grid), only when stderr is a terminal."""
    if not _stderr_is_terminal():
        return None
    from tqdm import tqdm

    class Bar:
        def __init__(self):
            self.stage, self.t = None, None

        def update(self, stage, done, total):
            if stage != self.stage:
                self.close()
                self.stage, self.t = stage, tqdm(total=total, desc=stage, leave=False)
            self.t.update(done - self.t.n)

        def close(self):
            if self.t is not None:
                self.t.close()

    return Bar()


def entry() -> None:
    """The ``jaxgd`` program (console script and ``python -m jaxgd``).

    It leaves with ``os._exit`` once :func:`main` has returned — every output file finished or
    removed (they are written atomically), standard output flushed (a failure there is already
    an error of :func:`main`) — after flushing both streams once more. That skips the
    interpreter's teardown: freeing every compiled program and a last garbage collection took
    about 0.25 s of every command here, and after Ctrl-C or SIGTERM (exit codes 130 and 143) an
    interrupt can land while XLA compiles on its own threads, where a normal shutdown may crash
    (a segfault was seen here).
    """
    import os

    require_extra()  # one line naming the extra, rather than a traceback deep in a command
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code if isinstance(code, int) else 0)
