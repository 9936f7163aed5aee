"""The OpenFeature provider (``openfeature-sdk`` 0.10; ``pip install shiftright-sdk[openfeature]``)::

    from openfeature import api
    from shiftright.flags.provider import ShiftrightProvider

    shiftright.init(app="checkout", env="prod", kafka="broker:9092")
    api.set_provider(ShiftrightProvider())
    api.get_client().get_boolean_value("new-checkout", False)

It evaluates from the same local store as :func:`shiftright.flag` (no I/O per evaluation)
and emits ``PROVIDER_CONFIGURATION_CHANGED`` with the changed flags after every change
that reaches the app. Context: ``targeting_key`` is the user (unless ``user_id`` is
given), ``customer_id`` / ``user_id`` attributes name them, the rest are attributes;
without a context the current scope's user, customer and tags are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from shiftright import api
from shiftright.client import Client
from shiftright.context import current
from shiftright.flags import runtime
from shiftright.flags.store import FlagStore

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class ShiftrightProvider(AbstractProvider):
    def __init__(self, client: Client | None = None, ready_timeout: float = 5.0) -> None:
        super().__init__()
        self._client = client
        self._ready_timeout = ready_timeout
        self._store: FlagStore | None = None

    def get_metadata(self) -> Metadata:
        return Metadata(name="shiftright")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Waits (up to ``ready_timeout``) for the first copy of the flags."""
        store = self._store_now()
        if store is not None:
            store.listeners.append(self._changed)
            store.loaded.wait(self._ready_timeout)

    def shutdown(self) -> None:
        store, self._store = self._store, None
        if store is not None and self._changed in store.listeners:
            store.listeners.remove(self._changed)

    def _changed(self, names: list[str]) -> None:
        if hasattr(self, "_on_emit"):  # attached to the OpenFeature API
            self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=names))

    def _store_now(self) -> FlagStore | None:
        client = self._client or api.get_client()
        if client is None:
            return None
        store = runtime.store_of(client)
        if self._store is not store and self._store is not None:
            self.shutdown()
        self._store = store
        return store

    # -- resolution ----------------------------------------------------------------------------
    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        details = self._resolve(flag_key, default_value, evaluation_context, (int, float))
        details.value = float(details.value)
        return details

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))

    def _resolve(
        self, key: str, default: T, context: EvaluationContext | None, types: tuple[type, ...]
    ) -> FlagResolutionDetails[T]:
        store = self._store or self._store_now()
        if store is None:
            return _error(default, ErrorCode.PROVIDER_NOT_READY, "shiftright.init() first")
        if not store.loaded.is_set():
            return _error(default, ErrorCode.PROVIDER_NOT_READY, "flags not loaded yet")
        value, variant, reason, error = store.evaluate(key, *_who(context))
        if error:
            return _error(default, ErrorCode(error), f"flag {key!r}: {error}")
        runtime.record(key, variant)
        if reason == Reason.DISABLED:
            return FlagResolutionDetails(default, reason=Reason.DISABLED, variant=variant)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return _error(default, ErrorCode.TYPE_MISMATCH, f"{key!r} is {type(value).__name__}")
        found = cast(T, value)  # checked against the asked type above
        return FlagResolutionDetails(found, reason=reason, variant=variant)


def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        default, error_code=code, error_message=message, reason=Reason.ERROR
    )


def _who(context: EvaluationContext | None) -> tuple[str, str, dict[str, str]]:
    scope = current.get()
    if context is None:
        return scope.user_id, scope.customer_id, scope.attributes
    attributes: dict[str, Any] = dict(context.attributes)
    user = attributes.pop("user_id", None) or context.targeting_key or scope.user_id
    customer = attributes.pop("customer_id", None) or scope.customer_id
    merged = dict(scope.attributes, **{k: str(v) for k, v in attributes.items()})
    return str(user or ""), str(customer or ""), merged
