"""Models built from values that are already valid, without validating them again, and
serialised straight to bytes.

The stream worker makes a grouped error (and an error event read on the fast path) from
values a validator has already checked and converted to the model's types. pydantic's
``model_construct`` skips validation too, but still walks every field in Python, which
costs about half of validating the record. :func:`built` sets the instance's fields as
``model_construct`` does, from values that name every field; the tests that use it
(``tests/unit/test_grouping_enrich.py``, ``tests/unit/test_fast_errors.py``) hold each
record it makes equal to the validated one, to the byte it is sent as.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def built(cls: type[M], **values: Any) -> M:
    """An instance of ``cls`` holding ``values``, which must name every field of it with a
    value of the field's type (nothing is checked or converted)."""
    return built_of(cls, values)


#: BaseModel's slots, set straight through their descriptors (what ``object.__setattr__``
#: finds for them, without looking them up each time).
_set_fields_set: Final = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Final = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Final = BaseModel.__dict__["__pydantic_private__"].__set__


def built_of(cls: type[M], values: dict[str, Any]) -> M:
    """:func:`built` holding ``values`` itself (not a copy: the caller lets go of it)."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    _set_fields_set(model, set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model


def json_bytes(model: BaseModel) -> bytes:
    """``model.model_dump_json().encode()`` without the round trip through ``str``: the
    bytes pydantic's serialiser writes (``model_dump_json`` decodes them)."""
    return type(model).__pydantic_serializer__.to_json(model)
