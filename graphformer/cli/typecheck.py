"""Config values checked against the constructors they are passed to, before anything is built.

YAML and Hydra overrides give any value to any key: ``model.block.prenorm=no`` is the string
``'no'``, which Python treats as true; ``trainer.max_epochs=true`` is ``True``, which is
also the int 1. So every ``_target_`` node is checked against the annotations of its
target's signature (``prenorm: bool``, ``max_epochs: int | None``, ``lr: float | Tensor``)
at the point the config enters: one generic rule, so a new constructor argument is checked
without a list to keep up to date. One naming rule adds a range: a key ending in
``dropout`` is a probability in [0, 1].
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Iterable, Iterator
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig

#: Hydra's own keys in a ``_target_`` node.
_HYDRA_KEYS = {"_target_", "_partial_", "_args_", "_recursive_", "_convert_"}
_PRIMITIVES = (bool, int, float, str, type(None))


class ConfigTypeError(ValueError):
    """A config value of the wrong type (or range) for the constructor it is passed to."""


def check(cfg: DictConfig, *keys: str) -> None:
    """Raise :class:`ConfigTypeError` listing every value under ``keys`` that its target's
    annotations refuse, e.g. ``model.block.prenorm='no': expected true or false``."""
    problems = [problem for key in keys for problem in _problems(cfg.get(key), key)]
    _raise(problems)


def check_flags(cfg: DictConfig, *keys: str) -> None:
    """The run's own switches (``train``, ``test``) must be true or false."""
    _raise(
        f"{key}={_show(cfg[key])}: expected true or false"
        for key in keys
        if key in cfg and not isinstance(cfg[key], bool)
    )


def _raise(problems: Iterable[str]) -> None:
    problems = list(problems)
    if problems:
        raise ConfigTypeError(
            "invalid settings:\n  " + "\n  ".join(problems) + "\nSet each to a value of the "
            "expected type, on the command line (key=value) or in the config file."
        )


def _show(value: object) -> str:
    """``value`` as it is written in YAML and on the command line."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def _problems(node: object, path: str) -> Iterator[str]:
    if isinstance(node, ListConfig):
        for index, item in enumerate(node):
            yield from _problems(item, f"{path}[{index}]")
        return
    if not isinstance(node, DictConfig):
        return
    target = node.get("_target_")
    hints = _annotations(target) if isinstance(target, str) else {}
    for key in node:
        if key in _HYDRA_KEYS:
            continue
        value = node[key]
        if not isinstance(value, _PRIMITIVES):
            yield from _problems(value, f"{path}.{key}")
        elif key in hints and not _accepts(hints[key], value):
            expected = _describe(hints[key])
            yield f"{path}.{key}={_show(value)}: expected {expected} (an argument of {target})"
        elif key.endswith("dropout") and _is_number(value) and not 0 <= value <= 1:
            yield f"{path}.{key}={_show(value)}: expected a probability in [0, 1]"


def _annotations(target: str) -> dict[str, Any]:
    """Parameter → resolved annotation of ``target``'s signature (unresolvable ones left out)."""
    try:
        obj = hydra.utils.get_object(target)
        function = obj.__init__ if inspect.isclass(obj) else obj
        parameters = inspect.signature(obj).parameters
    except Exception:  # an import error or odd callable: Hydra reports it when instantiating
        return {}
    try:
        return typing.get_type_hints(function)
    except Exception:  # one unresolvable name spoils get_type_hints: resolve one by one
        namespace = getattr(function, "__globals__", {})
        hints = {}
        for name, parameter in parameters.items():
            annotation = parameter.annotation
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)  # the target's own annotation
                except Exception:
                    continue
            if annotation is not inspect.Parameter.empty:
                hints[name] = annotation
        return hints


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _members(hint: Any) -> tuple:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(member for arg in typing.get_args(hint) for member in _members(arg))
    if origin is typing.Annotated:
        return _members(typing.get_args(hint)[0])
    return (hint,)


def _accepts(hint: Any, value: object) -> bool:
    """Whether a primitive config value fits ``hint``; hints it cannot judge accept."""
    for member in _members(hint):
        origin = typing.get_origin(member)
        if member is bool:
            ok = isinstance(value, bool)
        elif member is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif member is float:
            ok = _is_number(value)
        elif member is str:
            ok = isinstance(value, str)
        elif member is None or member is type(None):
            ok = value is None
        elif origin is typing.Literal:
            ok = any(type(value) is type(choice) and value == choice for choice in member.__args__)
        elif inspect.isclass(origin or member) and member is not object:
            cls = origin or member
            ok = isinstance(value, cls) or (isinstance(value, str) and issubclass(cls, os.PathLike))
        else:  # Any, TypeVar, a forward reference: not ours to judge
            ok = True
        if ok:
            return True
    return False


def _describe(hint: Any) -> str:
    names = {bool: "true or false", int: "an int", float: "a number", str: "a string"}
    words = []
    for member in _members(hint):
        if member is None or member is type(None):
            words.append("null")
        elif typing.get_origin(member) is typing.Literal:
            words.append("one of " + ", ".join(map(repr, member.__args__)))
        else:
            words.append(names.get(member, getattr(member, "__name__", str(member))))
    return " or ".join(dict.fromkeys(words))
