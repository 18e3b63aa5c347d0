"""The weight store: tensors live outside the IR, referenced by name.

`graph.weight "key"` ops name entries here. A module records where its store is
in the `graph.weight_store` attribute: either `mem:<n>` for a store registered
in this process (the normal compile pipeline) or a path to an `.npz` file
written next to an IR dump, so that `grimc-opt`/`xdsl-opt` can replay passes
that read or create weights.

A store only grows: passes add keys and never change an existing one. A store
loaded from a file (a replayed dump) reuses a loaded key when a pass adds the
same array under the same name hint, so replaying a pass on a dump yields the
keys the original run chose (`conv_0_w_bn`, not `conv_0_w_bn_1`) and nothing
new to save. Weights that are really new are saved beside an output file
(`persist`).
"""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr

from grimc.dialects.graph import WEIGHT_STORE_ATTR
from grimc.errors import GrimcError, cannot_write
from grimc.names import NameTable, sanitize

_REGISTRY: dict[str, WeightStore] = {}
_COUNTER = itertools.count()


class WeightStore(Mapping[str, np.ndarray]):
    """Name -> float32 array, with unique sanitized keys; append-only."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._names = NameTable()
        for key, value in (arrays or {}).items():
            self._names.reserve(key)
            self._arrays[key] = value
        self._loaded = frozenset(self._arrays)
        self.unsaved = False
        """True when keys were added since the store was loaded or saved."""

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise GrimcError(f"weight '{key}' is not in the weight store") from None

    def __contains__(self, key: object) -> bool:
        return key in self._arrays  # Mapping's would call __getitem__, which raises GrimcError

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def _reusable(self, entries: Mapping[str, np.ndarray]) -> bool:
        """Whether every key was loaded with exactly this array."""
        return all(
            key in self._loaded and _same(self._arrays[key], array)
            for key, array in entries.items()
        )

    def add(self, hint: str, array: np.ndarray) -> str:
        """Store `array` under a fresh key derived from `hint`; returns the key."""
        array = np.asarray(array, order="C")  # unlike ascontiguousarray, keeps 0-d arrays 0-d
        for key in _chain(sanitize(hint)):
            if key not in self._arrays:
                break
            if self._reusable({key: array}):
                return key
        key = self._names.fresh(hint)
        self._arrays[key] = array
        self.unsaved = True
        return key

    def add_packed(self, hint: str, arrays: Mapping[str, np.ndarray]) -> str:
        """Store several arrays under one fresh prefix as `<prefix>_<suffix>`.

        Used for packed sparse weights (see grimc.bcr_format.store_keys): the
        prefix is chosen so that none of the derived keys is taken.
        """
        for prefix in _chain(sanitize(hint)):
            keys = {
                f"{prefix}_{suffix}": np.asarray(a, order="C") for suffix, a in arrays.items()
            }
            if not any(k in self._arrays for k in keys):
                break
            if self._reusable(keys):
                return prefix
        base = hint
        n = 0
        while True:
            prefix = self._names.fresh(base if n == 0 else f"{base}_{n}")
            keys = {suffix: f"{prefix}_{suffix}" for suffix in arrays}
            if not any(k in self._arrays for k in keys.values()):
                break
            n += 1
        for suffix, array in arrays.items():
            self._names.reserve(keys[suffix])
            self._arrays[keys[suffix]] = np.asarray(array, order="C")
        self.unsaved = True
        return prefix

    def release(self, key: str) -> None:
        """Forget the array of `key` (its memory goes once nothing else holds it).
        The one exception to append-only: code generation of a module nobody
        else holds drops each weight once it is packed."""
        self._arrays.pop(key, None)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def save(self, path: Path) -> None:
        """Write an uncompressed .npz (written to a temp name, then renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **self._arrays)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise cannot_write(path, exc) from None
        self.unsaved = False

    @classmethod
    def load(cls, path: Path) -> WeightStore:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls({k: npz[k] for k in npz.files})
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise GrimcError(f"{path}: cannot read weight store ({exc})") from None


def _chain(base: str) -> Iterator[str]:
    """base, base_1, base_2, ...: the names NameTable.fresh tries in turn."""
    yield base
    yield from (f"{base}_{n}" for n in itertools.count(1))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


FINITE_CHUNK = 1 << 20
"""Elements `all_finite` checks at a time."""


def all_finite(array: np.ndarray) -> bool:
    """`np.isfinite(array).all()` a chunk at a time: the boolean array of a whole
    large weight (VGG-16's fc6: 100 MB) would be the import's peak."""
    flat = array.reshape(-1)
    return all(
        bool(np.isfinite(flat[i : i + FINITE_CHUNK]).all())
        for i in range(0, flat.size, FINITE_CHUNK)
    )


def attach(module: ModuleOp, store: WeightStore) -> str:
    """Register `store` in this process and point `module` at it."""
    ref = f"mem:{next(_COUNTER)}"
    _REGISTRY[ref] = store
    module.attributes[WEIGHT_STORE_ATTR] = StringAttr(ref)
    return ref


def rebind(module: ModuleOp, path: Path) -> WeightStore:
    """Point `module` at `path` for its store (saved later with `save_beside`)."""
    store = store_for(module)
    _REGISTRY[str(path)] = store
    module.attributes[WEIGHT_STORE_ATTR] = StringAttr(str(path))
    return store


def save_beside(module: ModuleOp, path: Path) -> None:
    """Save the module's store to `path` and point the module at that file."""
    rebind(module, path).save(path)


def persist(module: ModuleOp, beside: Path | None = None) -> str | None:
    """Make the module's weights readable by whoever reads its printed IR.

    With `beside`, save the store there and point the module at it. Without,
    nothing is written (input files are never modified); returns a one-line
    warning when the printed IR will name weights that no file holds.
    """
    if beside is not None:
        save_beside(module, beside)
        return None
    attr = module.attributes.get(WEIGHT_STORE_ATTR)
    if not isinstance(attr, StringAttr):
        return None
    store = store_for(module)
    if not store:
        return None
    if attr.data.startswith("mem:"):
        return "the weights live only in this process: give -o FILE to save them as FILE.npz"
    if store.unsaved:
        return (
            f"passes added weights that are not in {attr.data}: give -o FILE to save "
            "them as FILE.npz"
        )
    return None


def store_for(module: ModuleOp) -> WeightStore:
    """The weight store of `module` (an empty one if it has none yet)."""
    attr = module.attributes.get(WEIGHT_STORE_ATTR)
    if not isinstance(attr, StringAttr):
        store = WeightStore()
        attach(module, store)
        return store
    ref = attr.data
    if ref not in _REGISTRY:
        if ref.startswith("mem:"):
            raise GrimcError(f"weight store '{ref}' belongs to another process")
        _REGISTRY[ref] = WeightStore.load(Path(ref))
    return _REGISTRY[ref]
