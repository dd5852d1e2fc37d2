"""Fast construction of frozen slots dataclasses (the per-message values of the hot path).

A frozen dataclass ``__init__`` calls ``object.__setattr__`` once per field: for an 8-field
value that costs about five times a plain slots class's ``__init__``, and the publish path
builds several per message (the decoded PUBLISH, the ingress request, the routed message). The
helpers here build the same frozen values without that cost: a plain (mutable) *twin* class
with exactly the frozen class's ``__slots__`` has the same memory layout, so an instance of the
twin can be retyped to the frozen class with one ``__class__`` assignment. The result is an
ordinary instance of the frozen class: equal to, hashing like and as immutable as one built by
calling the class.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, field, fields, make_dataclass
from typing import Any, Final, TypeVar, cast

__all__ = ["fast_factory", "mutable_twin", "new_object", "set_class"]

_T = TypeVar("_T")

# The setter of ``obj.__class__`` (object_set_class), called directly: cheaper than
# ``object.__setattr__(obj, "__class__", cls)``, which also looks the name up.
set_class: Final[Callable[[object, type], None]] = cast(Any, object.__dict__["__class__"]).__set__
# ``object.__new__``: allocates an instance without running any ``__init__``.
new_object: Final[Callable[[type], Any]] = object.__new__


def mutable_twin(cls: type) -> type:
    """Return a plain (mutable) slots class with exactly the ``__slots__`` of ``cls``.

    The hottest paths allocate the twin with ``new_object``, store the fields with plain
    attribute assignment and retype the instance with ``set_class(obj, cls)``: identical
    ``__slots__`` mean an identical memory layout, which is what ``__class__`` assignment
    requires. Every field must be stored before the retyping.
    """
    slots = cast(Any, cls).__slots__
    return type(f"_Mutable{cls.__name__}", (), {"__slots__": slots})


def fast_factory(cls: type[_T]) -> Callable[..., _T]:
    """Return a constructor for the frozen slots dataclass ``cls``, fast like ``mutable_twin``.

    The twin here is a generated (non-frozen) slots dataclass, so the constructor keeps the
    signature of ``cls`` (positional order, keywords, defaults; defaults given with
    ``default_factory`` are not supported). Values are not validated beyond what the class's
    own ``__init__`` would do (dataclasses do none).
    """
    if any(f.default_factory is not MISSING for f in fields(cast(Any, cls))):
        raise TypeError(f"{cls.__name__}: a field has a default_factory")
    specs: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (f.name, Any) if f.default is MISSING else (f.name, Any, field(default=f.default))
        for f in fields(cast(Any, cls))
    ]
    twin = make_dataclass(
        f"_Mutable{cls.__name__}", specs, slots=True, eq=False, repr=False, match_args=False
    )
    if cast(Any, twin).__slots__ != cast(Any, cls).__slots__:  # pragma: no cover - layout guard
        raise TypeError(f"{cls.__name__}: twin layout differs")

    def build(*args: Any, **kwargs: Any) -> _T:
        obj = twin(*args, **kwargs)
        set_class(obj, cls)
        return cast(_T, obj)

    return build
