"""The backbone registry: name -> constructor, plus named presets of constructor arguments.

Small on purpose (torchvision's ``_api.py`` is the model): registering a name twice raises,
unknown keyword arguments raise naming the accepted ones, and ``None`` values are dropped so
that command-line defaults never override a network's own defaults (timm's rule).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from amsnet.errors import ConfigError

T = TypeVar("T", bound=Callable[..., nn.Module])

DEFAULT_PRESET = "paper"

_NETS: dict[str, Callable[..., nn.Module]] = {}
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {}


def register_net(name: str, *, presets: Mapping[str, Mapping[str, Any]] | None = None):
    """Class decorator registering a backbone under ``name`` with its named presets.

    Args:
        name: lower-case registry name (``"unet"``).
        presets: preset name -> constructor keyword arguments. ``"paper"`` (the configuration
            the AMSNet paper uses) must be among them; its arguments may be empty when the
            constructor's defaults already are the paper's.

    Raises:
        ConfigError: if ``name`` is already registered or a preset names an unknown argument.
    """

    def decorator(constructor: T) -> T:
        if name in _NETS:
            raise ConfigError(f"a backbone named {name!r} is already registered")
        table = {key: dict(value) for key, value in (presets or {DEFAULT_PRESET: {}}).items()}
        if DEFAULT_PRESET not in table:
            raise ConfigError(f"backbone {name!r} needs a {DEFAULT_PRESET!r} preset")
        accepted = _accepted_arguments(constructor)
        for preset, kwargs in table.items():
            _check_arguments(name, kwargs, accepted, context=f"preset {preset!r} of ")
        _NETS[name] = constructor
        _PRESETS[name] = table
        return constructor

    return decorator


def list_nets() -> list[str]:
    """Names of all registered backbones, sorted.

    Example:
        >>> "unet" in list_nets()
        True
    """
    return sorted(_NETS)


def list_presets(name: str) -> dict[str, dict[str, Any]]:
    """Preset name -> constructor arguments of the backbone ``name``."""
    return {key: dict(value) for key, value in _PRESETS[_lookup(name)].items()}


def net_signature(name: str) -> dict[str, Any]:
    """Constructor argument -> default value of the backbone ``name``."""
    return {
        key: param.default
        for key, param in inspect.signature(_NETS[_lookup(name)]).parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    }


def create_net(name: str, *, preset: str | None = DEFAULT_PRESET, **kwargs: Any) -> nn.Module:
    """Build the backbone ``name`` from a preset, overriding single arguments.

    The returned module carries ``net_config``: the name and every constructor argument
    (defaults resolved), enough to rebuild it; checkpoints store exactly this.

    Args:
        name: a name from :func:`list_nets`.
        preset: a preset of that backbone (``"paper"``, ``"small"``) or ``None`` for the bare
            constructor defaults.
        **kwargs: constructor arguments overriding the preset; ``None`` values are ignored.

    Raises:
        ConfigError: unknown name, unknown preset or unknown argument (the message lists what
            is accepted).

    Example:
        >>> net = create_net("dncnn", preset="small")
        >>> net.net_config["name"]
        'dncnn'
    """
    key = _lookup(name)
    constructor = _NETS[key]
    arguments: dict[str, Any] = {}
    if preset is not None:
        if preset not in _PRESETS[key]:
            raise ConfigError(
                f"backbone {key!r} has no preset {preset!r}; choose one of {sorted(_PRESETS[key])}"
            )
        arguments.update(_PRESETS[key][preset])
    given = {k: v for k, v in kwargs.items() if v is not None}
    _check_arguments(key, given, _accepted_arguments(constructor))
    arguments.update(given)
    _check_values(key, arguments, constructor)
    try:
        module = constructor(**arguments)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"backbone {key!r} cannot be built from {given}: {error}") from None
    bound = inspect.signature(constructor).bind(**arguments)
    bound.apply_defaults()
    module.net_config = {"name": key, **{k: _plain(v) for k, v in bound.arguments.items()}}
    return module


MAX_SIZE_ARGUMENT = 65536
"""Largest integer accepted for a backbone argument (widths, depths): a larger one is a typo
or a crafted file, and would ask for terabytes."""


def _check_values(name: str, arguments: Mapping[str, Any], constructor: Callable[..., Any]) -> None:
    """Each argument of the type of its constructor default, integers positive and bounded.

    Raises:
        ConfigError: naming the argument, its value and what is expected.
    """
    for key, param in inspect.signature(constructor).parameters.items():
        if key not in arguments or param.default is inspect.Parameter.empty:
            continue
        value, default = arguments[key], param.default
        if isinstance(default, bool):
            expected: tuple[type, ...] = (bool,)
        elif isinstance(default, int):
            expected = (int,)
        elif isinstance(default, float):
            expected = (int, float)
        elif isinstance(default, (list, tuple)):
            expected = (list, tuple)
        else:
            continue
        wrong_bool = isinstance(value, bool) and expected != (bool,)
        if wrong_bool or not isinstance(value, expected):
            raise ConfigError(
                f"backbone {name!r}: {key} must be a {expected[-1].__name__} like its default "
                f"{default!r}, got {value!r}"
            )
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                if isinstance(value, (list, tuple)):
                    raise ConfigError(f"backbone {name!r}: {key} must hold numbers, got {value!r}")
                continue
            if isinstance(number, int) and not 0 <= number <= MAX_SIZE_ARGUMENT:
                raise ConfigError(
                    f"backbone {name!r}: {key} = {number} is outside 0..{MAX_SIZE_ARGUMENT}"
                )


def _lookup(name: str) -> str:
    key = name.lower()
    if key not in _NETS:
        raise ConfigError(f"unknown backbone {name!r}; registered: {list_nets()}")
    return key


def _accepted_arguments(constructor: Callable[..., Any]) -> list[str]:
    return [
        key
        for key, param in inspect.signature(constructor).parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]


def _check_arguments(
    name: str, kwargs: Mapping[str, Any], accepted: list[str], context: str = ""
) -> None:
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{context}backbone {name!r} got unknown argument(s) {unknown}; "
            f"accepted: {sorted(accepted)}"
        )


def _plain(value: Any) -> Any:
    """Tuples become lists so that the config survives a JSON round trip unchanged."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
