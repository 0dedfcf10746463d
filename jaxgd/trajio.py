"""Keep and share results: a pytree of arrays in one ``.npz`` file, without pickle.

The file holds every array leaf (``leaf0``, ``leaf1``, ... in the order the description lists
them: a dict's keys in its own order) and one more entry, ``__jaxgd__``: the UTF-8 bytes of a JSON description of the tree
— its format name and version, and for each node its kind (``array`` with dtype and shape,
``none``, ``dict`` with its keys, ``list``, ``tuple``, ``namedtuple`` with its type name and
fields, ``node`` for another pytree node such as an Equinox module). Loading reads it with
``allow_pickle=False``, so a file can run no code.

:meth:`jaxgd.Trajectory.save` and :func:`jaxgd.load` are the public doors; they pass jaxgd's own
types (``Trajectory``, ``Params``) as the ``known`` types of :func:`load_tree`.
"""

from __future__ import annotations

import collections
import functools
import json
import numbers
import os
import tempfile
import zipfile

import jax
import numpy as np

from jaxgd._checks import ArgumentError, ArgumentTypeError

FORMAT = "jaxgd.tree"
VERSION = 1
DESCRIPTION = "__jaxgd__"  # the npz entry holding the JSON description


def type_name(cls: type) -> str:
    """``module.qualname``, the name a NamedTuple's type is saved under."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _describe(x, arrays: list, at: str):
    """The JSON description of ``x``, appending its array leaves to ``arrays``."""
    if x is None:
        return {"t": "none"}
    if isinstance(x, (np.ndarray, np.generic, jax.Array)) or (
            isinstance(x, numbers.Number) and not isinstance(x, complex)):
        a = np.asarray(x)
        if a.dtype.hasobject or a.dtype.kind == "V":  # objects need pickle; bfloat16 and the like read back as void
            raise ArgumentTypeError("tree", f"holds a {a.dtype.name} array at {at or 'the root'}: only arrays of "
                                            "NumPy's own number types can be saved without pickle")
        arrays.append(a)
        return {"t": "array", "dtype": a.dtype.str, "shape": list(a.shape)}
    if _is_namedtuple(x):
        return {"t": "namedtuple", "type": type_name(type(x)), "fields": list(x._fields),
                "items": [_describe(v, arrays, f"{at}.{f}") for f, v in zip(x._fields, x)]}
    if isinstance(x, dict):
        keys = list(x)
        if not all(isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) for k in keys):
            raise ArgumentTypeError("tree", f"has a dict key that is neither a string nor an integer at "
                                            f"{at or 'the root'}: {next(k for k in keys if not isinstance(k, (str, int)))!r}")
        return {"t": "dict", "keys": keys, "items": [_describe(x[k], arrays, f"{at}[{k!r}]") for k in keys]}
    if type(x) in (list, tuple):
        return {"t": type(x).__name__, "items": [_describe(v, arrays, f"{at}[{i}]") for i, v in enumerate(x)]}
    children = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda n: n is not x)[0]
    if len(children) == 1 and children[0][1] is x:  # a leaf of no kind above
        raise ArgumentTypeError("tree", f"holds a {type(x).__name__} at {at or 'the root'}: only arrays, numbers, "
                                        "None, dicts, lists, tuples and pytree nodes of them can be saved")
    keys = [jax.tree_util.keystr(p) for p, _ in children]
    return {"t": "node", "type": type_name(type(x)), "keys": keys,
            "items": [_describe(v, arrays, at + k) for k, (_, v) in zip(keys, children)]}


def save_tree(tree, path) -> None:
    """Write ``tree`` to ``path`` (the name as given: no suffix is added), atomically: a temporary
    file in the same folder, renamed over ``path`` once complete. Refuses a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ArgumentError("path", f"{path!r} is a folder: give a file name, e.g. {os.path.join(path, 'run.npz')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ArgumentError("path", f"{path!r}: its folder {folder!r} does not exist")
    arrays: list = []
    head = {"format": FORMAT, "version": VERSION, "tree": _describe(tree, arrays, "")}
    entries = {f"leaf{i}": a for i, a in enumerate(arrays)}
    entries[DESCRIPTION] = np.frombuffer(json.dumps(head).encode(), np.uint8)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=None)
def stand_in(name: str, fields: tuple) -> type:
    """The stand-in for a NamedTuple type that :func:`load_tree` does not know: a
    ``collections.namedtuple`` of the same (last) name and fields — the same attributes and the
    same pytree leaves, but not the original class. One type per (name, fields), so trees loaded
    twice compare equal in structure."""
    return collections.namedtuple(name.rsplit(".", 1)[-1], fields)


def load_tree(path, known=()):
    """The tree saved by :func:`save_tree` at ``path``: arrays come back as NumPy arrays (Python
    numbers as 0-d arrays), dicts, lists, tuples and None as they were, a NamedTuple of one of the
    ``known`` types as that type, any other NamedTuple as a :func:`stand_in`, and another pytree
    node (an Equinox module, a Flax struct) as a :func:`stand_in` whose fields are its attribute
    names — or as a tuple of its children where those cannot be field names.
    ``jax.tree.unflatten(jax.tree.structure(original), jax.tree.leaves(loaded))`` rebuilds the
    original type from a stand-in. Raises :class:`~jaxgd.ArgumentError` (named ``path``) in one line
    for a missing file, a folder, a file that is not a saved jaxgd tree, or a newer format version."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArgumentError("path", f"{path!r} does not exist")
    if os.path.isdir(path):
        raise ArgumentError("path", f"{path!r} is a folder, not a saved jaxgd trajectory")
    not_ours = ArgumentError("path", f"{path!r} is not a jaxgd trajectory file (one written by Trajectory.save)")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a .npy array
            raise not_ours
        with z:
            if DESCRIPTION not in z.files:
                raise not_ours
            head = json.loads(z[DESCRIPTION].tobytes().decode())
            if not isinstance(head, dict) or head.get("format") != FORMAT or not isinstance(head.get("version"), int):
                raise not_ours
            if head["version"] > VERSION:
                raise ArgumentError("path", f"{path!r} was written in format version {head['version']}, newer than "
                                            f"this jaxgd reads ({VERSION}): upgrade jaxgd")
            arrays = {k: z[k] for k in z.files if k != DESCRIPTION}
    except ArgumentError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, EOFError):
        raise not_ours from None
    types = {type_name(t): t for t in known}
    count = iter(range(len(arrays)))
    try:
        return _build(head["tree"], arrays, count, types)
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
        raise ArgumentError("path", f"{path!r} holds a damaged jaxgd trajectory (its description and arrays "
                                    "disagree)") from None


def _build(d: dict, arrays: dict, count, types: dict):
    t = d["t"]
    if t == "none":
        return None
    if t == "array":
        a = arrays[f"leaf{next(count)}"]
        if a.dtype.str != d["dtype"] or list(a.shape) != d["shape"]:
            raise ValueError("leaf differs from its description")
        return a
    items = [_build(v, arrays, count, types) for v in d["items"]]
    if t == "dict":
        if len(d["keys"]) != len(items):
            raise ValueError("keys")
        return dict(zip(d["keys"], items))
    if t in ("list", "tuple"):
        return list(items) if t == "list" else tuple(items)
    if t == "namedtuple":
        fields = tuple(d["fields"])
        cls = types.get(d["type"])
        if cls is not None and set(fields) <= set(cls._fields):  # a newer class's added fields take defaults
            return cls(**dict(zip(fields, items)))
        return stand_in(d["type"], fields)(*items)
    if t == "node":
        if all(k.startswith(".") for k in d["keys"]):
            try:
                return stand_in(d["type"], tuple(k[1:] for k in d["keys"]))(*items)
            except ValueError:  # a name a namedtuple cannot take (a leading underscore, a keyword)
                pass
        return tuple(items)
    raise ValueError(f"unknown kind {t!r}")
