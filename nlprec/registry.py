"""The model registry: every model registers itself by name with its config class.

Models are registered by explicit imports in `nlprec.models` (no import-by-filename magic).
`nlprec list` prints the registry; `build_config` turns user overrides into a config and
rejects unknown keys and wrong types with one-line errors.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

from nlprec.errors import NlprecError


@dataclass(frozen=True)
class ModelEntry:
    """One registered model."""

    name: str  # registry key, e.g. "word2vec", "neumf"
    model_cls: type  # the nn.Module class
    config_cls: type  # its frozen config dataclass
    family: str  # "embeddings", "sequence" or "recommender"
    description: str  # one line for `nlprec list`


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, *, config: type, family: str, description: str) -> Callable[[type], type]:
    """Class decorator: `@register("neumf", config=NeuMFConfig, family="recommender", description=...)`."""

    def decorate(model_cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, model_cls, config, family, description)
        return model_cls

    return decorate


def list_models() -> list[ModelEntry]:
    """All registered models, by family then name."""
    import nlprec.models  # noqa: F401  (the explicit imports that fill the registry)

    return sorted(_REGISTRY.values(), key=lambda entry: (entry.family, entry.name))


def get_model(name: str) -> ModelEntry:
    """The entry for `name`; unknown names list the known ones."""
    known = {entry.name: entry for entry in list_models()}
    if name not in known:
        raise NlprecError(f"unknown model {name!r}; known models: {', '.join(sorted(known))}")
    return known[name]


def build_config(config_cls: type, overrides: dict[str, Any]) -> Any:
    """`config_cls(**overrides)` after checking every key exists and every value has the right
    type; JSON lists become tuples where the field is a tuple (typed_values)."""
    fields = {field.name: field for field in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    for key, value in overrides.items():
        if key not in fields:
            raise NlprecError(f"{config_cls.__name__} has no option {key!r}; options: {', '.join(fields)}")
        if not _matches(value, hints[key]):
            raise NlprecError(f"option {key!r} expects {_type_name(hints[key])}, got {value!r}")
    return config_cls(**typed_values(config_cls, overrides))


def typed_values(config_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to tuples for tuple-typed fields (e.g. NeuMF mlp_layers, Adam betas)."""
    hints = typing.get_type_hints(config_cls)
    return {key: tuple(value) if isinstance(value, list) and typing.get_origin(hints.get(key)) is tuple else value
            for key, value in values.items()}


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))
