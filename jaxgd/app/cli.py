"""The command line: parse the flags, dispatch to the command. No numerics live here.

``jaxgd report``    the main job: every optimizer × sampling mode as an offline HTML report + files
``jaxgd run``       one optimizer run (``--json PATH`` or ``-`` for the whole trajectory)
``jaxgd sweep``     final loss against learning rate, one compiled call per optimizer
``jaxgd grads``     jax.grad against the notebook's analytic gradient over the grid
``jaxgd landscape`` a real model's loss landscape on a plane through parameter space, with sharpness
``jaxgd compare``   a fair comparison of optimizers over a suite of tasks (compare.html, compare.json)
``jaxgd notebook``  the notebook's printed numbers, and every optimizer × sampling mode

What each command does, and prints, is :mod:`jaxgd.app.commands`; the streams and exit codes
around it are :mod:`jaxgd.app.terminal`, the signals :mod:`jaxgd.app.signals`. Bad arguments exit
with status 2 and one line on stderr, naming the flag; nothing is written to stdout.
"""

from __future__ import annotations

import argparse
from functools import partial

import jax

from jaxgd.app import require_extra, signals, terminal

require_extra()  # one line naming the extra, before the commands import jaxgd.plots (plotly, matplotlib)

from jaxgd.app.commands import COMMANDS, HYPER  # noqa: E402
from jaxgd.comparison import OPTIMIZERS as COMPARE_OPTIMIZERS, SUITE as COMPARE_SUITE  # noqa: E402
from jaxgd.landscapes import LANDSCAPES  # noqa: E402

FLAG_EXCEPTIONS = {"spec": "--model"}  # library argument names whose flag is not the name with - for _
FLAGS = set()  # every flag of every command (filled as the parser is built)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")

    def add_argument(self, *names, **kwargs):
        FLAGS.update(names)
        return super().add_argument(*names, **kwargs)


def flag(name: str) -> str:
    """The flag of a library argument (``batch_size`` → ``--batch-size``, ``spec`` → ``--model``), or
    ``name`` itself where no command has that flag (e.g. ``sweep_points``, a key of the TOML file only)."""
    f = FLAG_EXCEPTIONS.get(name, "--" + name.replace("_", "-"))
    return f if f in FLAGS else name


def _init_pair(text: str) -> tuple[float, float]:
    try:
        w, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers W,b (e.g. --init=-4,-7), got {text!r}") from None
    return w, b


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="working precision (default float64, as the notebook)")
    p.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to y (default 0)")
    p.add_argument("--data-seed", type=int, help="with --noise: seed of that noise (default 0)")
    p.add_argument("--data", metavar="FILE.csv",
                   help="fit your own data: two numeric columns x, y (a header row is optional)")
    p.add_argument("--problem", default="notebook", help="notebook (default) or a landscape: " + ", ".join(LANDSCAPES))


def _add_sampling(p: argparse.ArgumentParser, epochs: int) -> None:
    """The flags of one run's schedule and sample order, shared by run and sweep."""
    p.add_argument("--epochs", type=int, default=epochs, help=f"passes over the data (default {epochs})")
    p.add_argument("--batch-size", type=int, help="omit for full batch; 1 = SGD")
    p.add_argument("--sampling", help="with --batch-size: shuffle or replacement (default shuffle)")
    p.add_argument("--rng", help="with --batch-size: jax or numpy (the notebook's stream) (default jax)")
    p.add_argument("--seed", type=int, help="with --batch-size: seed of the sample order (default 0)")
    p.add_argument("--loss-every", type=int, metavar="K", help="the full-data loss at every K-th step, NaN between "
                   "(default every step; fewer past 10⁸ example evaluations a run, said on stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxgd", description="See how gradient-descent optimizers move on a loss surface.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run one optimizer and print or save its trajectory")
    r.add_argument("--optimizer", default="gd",
                   help="gd, momentum, nesterov, rmsprop, adam, or optax:NAME (default gd)")
    r.add_argument("--lr", type=float, default=0.05, help="learning rate > 0 (default 0.05)")
    _add_sampling(r, epochs=20)
    r.add_argument("--init", type=_init_pair, metavar="W,b",
                   help="starting point, e.g. --init=-4,-7 (default: the problem's, (-4, -7) for the notebook)")
    for h in HYPER:
        r.add_argument(f"--{h}", type=float, help=f"{h} (for the optimizers that take it)")
    r.add_argument("--schedule", default="constant",
                   help="learning-rate schedule: constant (default), exponential, cosine, warmup-cosine")
    r.add_argument("--decay-rate", type=float, help="exponential: lr·rate^step (default 0.99)")
    r.add_argument("--warmup", type=int, help="warmup-cosine: warmup steps (default a tenth)")
    r.add_argument("--final-fraction", type=float,
                   help="cosine, warmup-cosine: final lr as a fraction of --lr (default 0)")
    r.add_argument("--json", metavar="PATH", help="write the trajectory as JSON; - for stdout")
    _add_common(r)

    g = sub.add_parser("grads", help="compare jax.grad with the analytic gradient over the grid")
    g.add_argument("--grid", type=int, default=101, help="points per axis over the problem's plot ranges (default 101)")
    _add_common(g)

    rp = sub.add_parser("report", help="the main job: every optimizer × sampling mode, as an offline report")
    rp.add_argument("--optimizers",
                    help="comma list (default gd,momentum,rmsprop,adam); any of gd, momentum, nesterov, rmsprop, "
                         "adam, optax:NAME")
    rp.add_argument("--lr", type=float, help="one learning rate for every run (default: presets)")
    rp.add_argument("--epochs", type=int, help="epochs for every run (default: presets)")
    rp.add_argument("--loss-every", type=int, metavar="K", help="the full-data loss at every K-th step, NaN between "
                    "(default every step; fewer past 10⁸ example evaluations a run, said on stderr)")
    rp.add_argument("--batch-size", type=int, help="the minibatch mode's batch size (default 8, or n − 1 of n ≤ 8 rows)")
    rp.add_argument("--seed", type=int,
                    help="sample-order seed for every mode (default: the notebook's, 2 for SGD and 1 for minibatch)")
    rp.add_argument("--noise", type=float, help="std of noise added to the fitted y (default 0)")
    rp.add_argument("--data-seed", type=int, help="seed of the notebook's noise (default 0)")
    rp.add_argument("--data", metavar="FILE.csv", help="fit your own data: two numeric columns x, y")
    rp.add_argument("--problem", help="notebook (default) or a landscape: " + ", ".join(LANDSCAPES))
    rp.add_argument("--grid", type=int, help="surface points per axis (default 101)")
    rp.add_argument("--dtype", choices=("float64", "float32"), help="default float64")
    rp.add_argument("--out", help="output folder (default out/)")
    rp.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file; flags override it")
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
    ls.add_argument("--target", help="the CSV's target column (default: its last column)")
    ls.add_argument("--task", help="regression or classification (default: inferred from the target)")
    ls.add_argument("--model", default="mlp:32", help="mlp:H1,H2,... hidden widths (default mlp:32)")
    ls.add_argument("--activation", default="tanh", help="tanh (default), relu, gelu, sigmoid, softplus, identity")
    ls.add_argument("--loss", default="xent", help="classification's loss: xent (softmax cross-entropy, default) or "
                                                   "mse (squared error against one-hot targets)")
    ls.add_argument("--optimizers", default="gd,momentum,adam", help="comma list (default gd,momentum,adam)")
    ls.add_argument("--lr", default="0.5,0.5,0.01", help="one learning rate, or one per optimizer, comma-separated "
                                                          "(default 0.5,0.5,0.01)")
    ls.add_argument("--epochs", type=int, default=100, help="passes over the data (default 100)")
    ls.add_argument("--batch-size", type=int, help="omit for full batch")
    ls.add_argument("--plane", default="pca", help="pca (default), random (filter-normalised) or hessian")
    ls.add_argument("--grid", type=int, default=51, help="points per axis of the plane (default 51)")
    ls.add_argument("--sharpness-every", type=int, default=10, help="measure the sharpness every k steps; 0: never "
                                                                    "(default 10)")
    ls.add_argument("--sharpness-of", choices=("hessian", "preconditioned"), default="hessian",
                    help="the top eigenvalue of the Hessian H (default), or of P⁻¹H for rmsprop and adam (P their "
                         "diagonal preconditioner; then their stability limits are drawn)")
    ls.add_argument("--seed", type=int, default=0, help="seed of the model's init, the sample order and the plane")
    ls.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64")
    ls.add_argument("--out", default="out", help="output folder (default out/): landscape.html, .json, .npz, PNGs")
    ls.add_argument("--no-png", dest="png", action="store_false", help="skip the PNGs")
    ls.add_argument("--yes", action="store_true", help="go on when the work is estimated at more than an hour")

    cp = sub.add_parser("compare", help="a fair comparison of optimizers over a suite of tasks: profiles, lr "
                                        "sensitivity, tuning budget, ranking stability")
    cp.add_argument("--tasks", help="comma list of the suite's tasks (default all ten: " + ", ".join(COMPARE_SUITE) + ")")
    cp.add_argument("--optimizers", help="comma list (default " + ",".join(COMPARE_OPTIMIZERS) + "); any of gd, "
                                         "momentum, nesterov, rmsprop, adam, newton, lbfgs, optax:NAME")
    cp.add_argument("--num-lrs", type=int, default=None, help="learning rates, log-spaced (default 25)")
    cp.add_argument("--lr-min", type=float, default=1e-4, help="smallest learning rate (default 1e-4)")
    cp.add_argument("--lr-max", type=float, default=10.0, help="largest learning rate (default 10)")
    cp.add_argument("--num-second", type=int, default=None, help="values of each optimizer's second hyperparameter "
                                                              "(default 8)")
    cp.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 10)")
    cp.add_argument("--budget", type=int, default=None, help="gradient evaluations per run (default 200)")
    cp.add_argument("--target", type=float, default=1e-2, help="the fraction of the gap left at the target "
                                                               "(default 1e-2)")
    cp.add_argument("--quick", action="store_true", help="a small suite: 3 tasks × gd, momentum, adam, 6 lrs × 2 × 3 "
                                                         "seeds, budget 60 (explicit flags still apply)")
    cp.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64")
    cp.add_argument("--out", default="out/compare", help="output folder (default out/compare/): compare.html, "
                                                         "compare.json")
    n = sub.add_parser("notebook", help="the notebook's numbers, and every optimizer × sampling mode")
    n.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    for p in (r, rp, sw, cp):
        p.add_argument("--yes", action="store_true", help="go on when the work is estimated at more than an hour")
    for p in sub.choices.values():
        p.add_argument("-v", "--verbose", action="store_true",
                       help="say on stderr, once each, a cache folder not used and a cache entry skipped")
    return parser


def main(argv=None) -> int:
    """The ``jaxgd`` command of ``argv`` (default ``sys.argv[1:]``); returns its exit code (see
    :mod:`jaxgd.app.terminal`), or exits with status 2 on bad arguments (the program: :mod:`jaxgd.__main__`)."""
    with signals.as_exceptions():
        parser = build_parser()
        args = parser.parse_args(argv)
        needs_stdout = args.command in ("grads", "notebook") or (args.command == "run" and args.json in (None, "-"))
        setup = partial(_setup_dtype, verbose=args.verbose)
        return terminal.run_command(lambda: COMMANDS[args.command](args, setup), needs_stdout,
                                    bad_argument=lambda e: parser.error(f"{flag(e.name)} {e.detail}"))


def _setup_dtype(dtype: str, verbose: bool = False) -> str | None:
    """Set up JAX for a command: its precision, then the caches (:func:`_setup_cache`, whose page folder it
    returns; ``verbose``: a folder or entry of it refused is said on stderr)."""
    jax.config.update("jax_enable_x64", dtype == "float64")
    return _setup_cache(verbose)


def _setup_cache(verbose: bool = False) -> str | None:
    """JAX's persistent compilation cache, so a second ``jaxgd`` command skips compiling, and in its
    ``programs`` subfolder jaxgd's own cache of compiled runs (:mod:`jaxgd.app.program_cache`), so it
    also skips tracing them.

    In ``$JAXGD_CACHE_DIR`` (default ``$HOME/.cache/jaxgd/xla``); ``JAXGD_CACHE_DIR=off`` disables both,
    as do, with no word (unless ``-v``), a folder :func:`jaxgd.app.program_cache.own_folder` refuses (made 0700; the
    user's to write alone, and writable: not a file, /proc or a read-only mount) and, without
    ``$JAXGD_CACHE_DIR``, a ``$HOME`` unset or not a folder (jaxgd never creates a home folder). JAX's
    warnings on failing to read or write its cache (a full disk) are silenced. Returns the folder for
    the pages' packed plotly.js (its ``page`` subfolder), or None without a cache.
    """
    import os
    import warnings

    import jax

    from jaxgd.app import program_cache

    program_cache.tell(terminal.stderr if verbose else None)
    d = os.environ.get("JAXGD_CACHE_DIR")
    if d is None:
        home = os.environ.get("HOME")
        if not home or not os.path.isdir(home):
            return None
        d = os.path.join(home, ".cache", "jaxgd", "xla")
    if d.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    d = program_cache.own_folder(d)
    if d is None:
        return None
    warnings.filterwarnings("ignore", "Error (reading|writing) persistent compilation cache entry")
    jax.config.update("jax_compilation_cache_dir", str(d))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    program_cache.enable(d / "programs")
    return str(d / "page")
