"""Small immutable value classes, without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis`` and ``tokenize``),
and makes each class by compiling its methods: on this project's 30 value classes
about 20 ms at every start, most of safe-pip's own start-up.  Its value classes
are declared with ``@frozen`` instead: fields and their order from the class
annotations, defaults from class attributes (``field(default_factory=...)`` for a
fresh mutable one), construction by position or keyword, equality and hashing on
the fields, a repr, ``replace``, and no assignment after construction.  Type
checkers read ``@frozen`` as a frozen dataclass (PEP 681).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
    C = TypeVar("C", bound=type)


class FrozenInstanceError(AttributeError):
    """An attempt to assign to a field of a ``@frozen`` instance."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A default made fresh for every instance (``field(default_factory=dict)``)."""
    return _Factory(default_factory)  # type: ignore[return-value]


_MARK = object()


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """The first construction of a class: give it its own ``__init__`` (one small
    ``exec``, as dataclasses do, but only for the classes that are used), then run it."""
    cls = type(self)
    init = _compiled_init(cls)
    cls.__init__ = init
    init(self, *args, **kwargs)


def _compiled_init(cls: type) -> Callable[..., None]:
    names: tuple[str, ...] = cls.__frozen_fields__  # type: ignore[attr-defined]
    defaults: dict[str, Any] = cls.__frozen_defaults__  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"_MARK": _MARK}
    params: list[str] = []
    body: list[str] = []
    for name in names:
        if name in defaults:
            default = defaults[name]
            if isinstance(default, _Factory):
                namespace[f"_make_{name}"] = default.make
                params.append(f"{name}=_MARK")
                body.append(f"    d[{name!r}] = _make_{name}() if {name} is _MARK else {name}")
                continue
            namespace[f"_default_{name}"] = default
            params.append(f"{name}=_default_{name}")
        elif params and "=" in params[-1]:
            message = f"{cls.__qualname__}: field {name!r} without a default follows one with"
            raise TypeError(message)
        else:
            params.append(name)
        body.append(f"    d[{name!r}] = {name}")
    source = "\n".join(
        [f"def __init__(self, {', '.join(params)}):", "    d = self.__dict__", *body]
    )
    exec(source, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in type(self).__frozen_fields__)


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return bool(_values(self) == _values(other))


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    names = type(self).__frozen_fields__
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
    return f"{type(self).__qualname__}({inner})"


def _setattr(self: Any, name: str, _value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of {type(self).__qualname__}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of {type(self).__qualname__}")


def _decorate(cls: C) -> C:
    names = tuple(vars(cls).get("__annotations__", {}))
    defaults = {name: vars(cls)[name] for name in names if name in vars(cls)}
    for name, value in defaults.items():
        if isinstance(value, _Factory):
            delattr(cls, name)  # made per instance from ``__frozen_defaults__``
    cls.__frozen_fields__ = names  # type: ignore[attr-defined]
    cls.__frozen_defaults__ = defaults  # type: ignore[attr-defined]
    setattr(cls, "__match_args__", names)  # noqa: B010 - a class of any name
    methods = {
        "__init__": _first_init,
        "__eq__": _eq,
        "__hash__": _hash,
        "__repr__": _repr,
        "__setattr__": _setattr,
        "__delattr__": _delattr,
    }
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def fields(cls: type) -> tuple[str, ...]:
    """The field names of a ``@frozen`` class, in order."""
    return tuple(cls.__frozen_fields__)  # type: ignore[attr-defined]


def replace(obj: T, **changes: Any) -> T:
    """A copy of the ``@frozen`` instance ``obj`` with ``changes`` to its fields."""
    names = type(obj).__frozen_fields__  # type: ignore[attr-defined]
    values = {name: getattr(obj, name) for name in names}
    values.update(changes)
    return type(obj)(**values)


if TYPE_CHECKING:

    @dataclass_transform(frozen_default=True, field_specifiers=(field,))
    def frozen(cls: C) -> C: ...

else:
    frozen = _decorate


__all__ = ["FrozenInstanceError", "field", "fields", "frozen", "replace"]
