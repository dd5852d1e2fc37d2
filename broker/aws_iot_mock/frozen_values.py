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
from dataclasses import MISSING, fields
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

    The constructor is generated, as dataclasses generate ``__init__``: a function with the
    signature of ``cls`` (positional order, keywords, defaults) that stores each field on a
    ``mutable_twin`` instance and retypes it. Defaults must be plain values (a field with a
    ``default_factory`` is refused); values are not validated, as dataclasses validate none.

    Raises:
        TypeError: ``cls`` is not a slots dataclass, or a field has a ``default_factory``.
    """
    names = [f.name for f in fields(cast(Any, cls))]
    if names != list(getattr(cls, "__slots__", ())):
        raise TypeError(f"{cls.__name__}: not a slots dataclass")
    defaults: dict[str, Any] = {}
    parameters = []
    for f in fields(cast(Any, cls)):
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}: field {f.name!r} has a default_factory")
        if f.default is MISSING:
            parameters.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    obj.{name} = {name}\n" for name in names)
    source = (
        f"def build({', '.join(parameters)}):\n"
        "    obj = _new(_twin)\n"
        f"{body}"
        "    _set_class(obj, _cls)\n"
        "    return obj\n"
    )
    namespace: dict[str, Any] = {
        **defaults,
        "_new": new_object,
        "_twin": mutable_twin(cls),
        "_set_class": set_class,
        "_cls": cls,
    }
    # Generated from the field names only, as dataclasses generate __init__.
    exec(source, namespace)
    build = namespace["build"]
    build.__qualname__ = build.__name__ = f"new_{cls.__name__}"
    build.__doc__ = f"``{cls.__name__}(...)``, built without the frozen ``__init__``."
    return cast(Callable[..., _T], build)
