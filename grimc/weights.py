"""The weight store: tensors live outside the IR, referenced by name.

`graph.weight "key"` ops name entries here. A module records where its store is
in the `graph.weight_store` attribute: either `mem:<n>` for a store registered
in this process (the normal compile pipeline) or a path to an `.npz` file
written next to an IR dump, so that `grimc-opt`/`xdsl-opt` can replay passes
that read or create weights.
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
from grimc.names import NameTable

_REGISTRY: dict[str, WeightStore] = {}
_COUNTER = itertools.count()


class WeightStore(Mapping[str, np.ndarray]):
    """Name -> float32 array, with unique sanitized keys."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._names = NameTable()
        for key, value in (arrays or {}).items():
            self._names.reserve(key)
            self._arrays[key] = value

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise GrimcError(f"weight '{key}' is not in the weight store") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def add(self, hint: str, array: np.ndarray) -> str:
        """Store `array` under a fresh key derived from `hint`; returns the key."""
        key = self._names.fresh(hint)
        self._arrays[key] = np.ascontiguousarray(array)
        return key

    def add_packed(self, hint: str, arrays: Mapping[str, np.ndarray]) -> str:
        """Store several arrays under one fresh prefix as `<prefix>_<suffix>`.

        Used for packed sparse weights (see grimc.bcr_format.store_keys): the
        prefix is chosen so that none of the derived keys is taken.
        """
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
            self._arrays[keys[suffix]] = np.ascontiguousarray(array)
        return prefix

    def release(self, key: str) -> None:
        """Forget the array of `key` (its memory goes once nothing else holds it)."""
        self._arrays.pop(key, None)

    def replace(self, key: str, array: np.ndarray) -> None:
        self._arrays[key] = np.ascontiguousarray(array)

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

    @classmethod
    def load(cls, path: Path) -> WeightStore:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls({k: npz[k] for k in npz.files})
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise GrimcError(f"{path}: cannot read weight store ({exc})") from None


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
