"""The fast constructors of frozen values build exactly what calling the class builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from aws_iot_mock.core.ingress import PublishRequest, new_publish_request
from aws_iot_mock.frozen_values import fast_factory, mutable_twin, new_object, set_class
from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties, Publish
from aws_iot_mock.mqtt.message import Message, new_message

PROPERTIES = Properties(content_type="text/plain", user_properties=(("k", "v"),))


@pytest.mark.parametrize(
    ("factory", "cls", "args", "kwargs"),
    [
        (new_message, Message, ("a/b", b"x"), {}),
        (new_message, Message, ("a/b", b"x", 1, True, PROPERTIES, 9.5, "c1", 3.0), {}),
        (new_message, Message, ("a/b",), {"payload": b"", "sender": None, "qos": 1}),
        (new_publish_request, PublishRequest, ("t", b"p"), {}),
        (new_publish_request, PublishRequest, ("t", b"p", 1, True, PROPERTIES, "trace"), {}),
    ],
)
def test_a_fast_factory_builds_what_the_class_builds(
    factory: Callable[..., Any], cls: type[Any], args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    built = factory(*args, **kwargs)
    expected = cls(*args, **kwargs)
    assert type(built) is cls
    assert built == expected
    assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    assert dataclasses.replace(built) == expected


def test_a_fast_built_value_is_as_immutable_as_a_called_one() -> None:
    message = new_message("a/b", b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.topic = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del message.payload


def test_a_fast_factory_keeps_the_signature_and_its_errors() -> None:
    with pytest.raises(TypeError):
        new_message()  # the topic is required, as for Message()
    with pytest.raises(TypeError):
        new_message("a", b"", unknown=1)


def test_a_default_factory_is_refused_not_silently_required() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default_factory"):
        fast_factory(WithFactory)


def test_a_mutable_twin_retyped_is_an_ordinary_frozen_value() -> None:
    twin = mutable_twin(Publish)
    obj = new_object(twin)
    obj.topic, obj.payload, obj.qos, obj.retain = "t", b"p", 0, False
    obj.dup, obj.packet_id, obj.properties = False, None, EMPTY_PROPERTIES
    set_class(obj, Publish)
    assert obj == Publish("t", b"p", 0, False, False, None, EMPTY_PROPERTIES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.qos = 1
