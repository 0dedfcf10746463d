"""Which compiled programs may run from several threads at once on XLA's CPU runtime.

XLA's CPU client gives every program one intra-op thread pool (a thread a core). jaxlib 0.10's
LAPACK kernels cut a batch of matrices into chunks, schedule the chunks on that pool and block
until they are done (``ParallelBatchMap`` in ``jaxlib/cpu/lapack_kernels.cc``, tag jax-v0.10.2;
open-source builds leave that path out from 0.11.1). A single matrix, or a batch under 2·10⁵ flops,
runs inline on the calling thread. Batched calls from two threads can hold every pool thread, each
waiting for chunks that no free thread is left to run: here a vmapped sharpness sweep in two
threads hung so (read with gdb: both ``tf_XLAEigen`` threads in ``lapack_dsyevd_ffi`` →
``ParallelBatchMap`` → ``BlockingCounter::Wait``). XLA's FFT waits on the pool the same way
(``ducc0 … latch::wait`` under ``FftThunk``: PyAutoLabs/PyAutoHeart's diagnostics,
PyAutoLabs/PyAutoFit#1530), and a host callback or another library's FFI call may do anything.

So a program is *safe* in several threads when its lowered StableHLO has no FFT and calls no
custom call other than one of jaxlib's LAPACK kernels on one matrix (a batch of 1: every dimension
but the last two of each operand is 1).
:func:`hazard` reads that from a lowered program's text, :func:`program_hazard` from
``jitted.lower(*args)``: JAX keeps that lowering, and the call that follows does not trace or lower
again (measured: a first call of the same total time with and without it).
"""

from __future__ import annotations

import math
import os
import re

_CALL = re.compile(r"stablehlo\.custom_call @([\w.]+)\(.*:\s*\(([^()]*)\)\s*->")
_LAPACK = re.compile(r"lapack_[sdcz](?:syevd|heevd|potrf|getrf|geqrf|geqp3|orgqr|ungqr|trsm|gesdd|gesvd|gesvj|geev|gees|"
                     r"gehrd|sytrd|hetrd|gtsv)(?:_ffi)?$")
_TENSOR = re.compile(r"tensor<([^>]*)>")


def cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _batch(tensor: str) -> int | None:
    """The batch of a StableHLO tensor type's body as LAPACK kernels read it, the product of all but
    the last two dimensions: ``"8x20x20xf64"`` → 8, ``"20x20xf64"`` and ``"f64"`` → 1; None where a
    dimension is dynamic (``?``)."""
    dims = tensor.split("x")[:-1]
    if any(not d.isdigit() for d in dims):
        return None
    return math.prod(int(d) for d in dims[:-2])


def hazard(text: str) -> str | None:
    """What in a lowered program's StableHLO ``text`` may deadlock XLA's CPU pool when the program
    runs from several threads at once (see the module's docstring), in words; None if nothing."""
    if re.search(r"stablehlo\.fft\b", text):
        return "an FFT"
    for line in text.splitlines():
        if "stablehlo.custom_call" not in line:
            continue
        m = _CALL.search(line)
        if m is None:
            return "a custom call"
        target, operands = m.groups()
        if not _LAPACK.match(target):
            return f"a custom call ({target})"
        for shape in _TENSOR.findall(operands):
            if _batch(shape) != 1:
                return f"a batched LAPACK call ({target} on tensor<{shape}>)"
    return None


def program_hazard(jitted, *args) -> str | None:
    """:func:`hazard` of ``jitted.lower(*args)`` (static arguments among ``args`` as ``jitted`` takes them)."""
    return hazard(jitted.lower(*args).as_text())
