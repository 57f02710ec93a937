"""One registry for everything a recipe or a command names: methods, models, writers, bench
sections.

Each registry is filled two ways: a decorator (`@METHODS.register("kd")`) on what the project
or an imported module defines, and the installed entry points of one group (`kdzoo.methods`,
`kdzoo.models`, `kdzoo.writers`, `kdzoo.bench`), so that a package adds a method, a model, a
writer or a bench section by being installed:

    [project.entry-points."kdzoo.models"]
    my_net = "my_package.models:my_net"

Listing names imports nothing; a look-up of an unknown name loads only the entry point of that
name. The layer at the bottom: it imports nothing of the project.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> object, from a decorator and from the entry points of `group`.

    `builtin_modules` are imported on the first look-up (their decorators register them);
    `on_register(name, obj)` runs once per registration (methods record their name on the
    class)."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtin_modules: Sequence[str] = (),
        on_register: Callable[[str, T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.builtin_modules = tuple(builtin_modules)
        self.on_register = on_register
        self._items: dict[str, T] = {}
        self._builtins_loaded = not self.builtin_modules

    def add(self, name: str, obj: T) -> T:
        """Register `obj` as `name` (ValueError if another object holds the name)."""
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        if self.on_register is not None:
            self.on_register(name, obj)
        return obj

    def remove(self, name: str) -> None:
        """Forget `name` (a test's temporary entry); its entry point, if any, stays."""
        self._items.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@registry.register("name")` on a class or a function."""

        def decorate(obj: T) -> T:
            return self.add(name, obj)

        return decorate

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for module in self.builtin_modules:
                importlib.import_module(module)

    def entry_points(self) -> dict[str, EntryPoint]:
        """The installed entry points of the group by name (nothing is imported)."""
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def _load(self, ep: EntryPoint) -> T:
        obj = ep.load()  # imports the package; a decorator there may register it already
        held = self._items.get(ep.name)
        if held is not None and held is not obj:
            raise ValueError(
                f"entry point '{ep.name} = {ep.value}' of group {self.group} names another "
                f"object than the {self.kind} registered as '{ep.name}'"
            )
        return self.add(ep.name, obj)

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._items or name in self.entry_points()

    def get(self, name: str) -> T:
        """The object registered as `name` (KeyError if none is, nor any entry point)."""
        self._load_builtins()
        if name not in self._items:
            ep = self.entry_points().get(name)
            if ep is None:
                raise KeyError(name)
            return self._load(ep)
        return self._items[name]

    def names(self) -> list[str]:
        """Registered names in registration order, then installed entry points not loaded yet
        (without importing them)."""
        self._load_builtins()
        return list(dict.fromkeys([*self._items, *self.entry_points()]))

    def loaded(self) -> dict[str, T]:
        """What is registered so far (no entry point is loaded)."""
        self._load_builtins()
        return dict(self._items)

    def all(self) -> dict[str, T]:
        """Every object by name, loading every installed entry point."""
        for name in self.names():
            self.get(name)
        return dict(self._items)
