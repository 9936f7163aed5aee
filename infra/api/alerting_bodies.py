"""The bodies of the alerting HTTP API, as its OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field


class Problem(BaseModel):
    line: int | None = None
    path: str
    reason: str
    message: str


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[Problem] = Field(default_factory=list)


class RuleOut(BaseModel):
    name: str
    kind: str
    app: str
    env: str
    source: str
    severity: str
    for_: float = Field(alias="for")
    enabled: bool
    description: str


class SubscriptionOut(BaseModel):
    name: str
    channel: str
    to: str
    matchers: list[str]
    rules: list[str]
    send_resolved: bool


class RulesOut(BaseModel):
    version: int = Field(description="0: nothing applied yet.")
    applied_by: str
    applied_at: datetime | None
    source: str
    yaml: str
    rules: list[RuleOut]
    subscriptions: list[SubscriptionOut]


class ChangeOut(BaseModel):
    op: str = Field(description="+ added, - removed, ~ changed")
    what: str
    name: str
    fields: list[str]


class ApplyOut(BaseModel):
    applied: bool
    dry_run: bool
    version: int = Field(description="The version in force after this request.")
    previous_version: int
    changes: list[ChangeOut]


class SilenceIn(BaseModel):
    matchers: list[str] = Field(min_length=1, examples=[["app=checkout", "severity=warning"]])
    duration: str | None = Field(None, description="30m, 2h, 1d (or give ends_at).")
    starts_at: datetime | None = Field(None, description="Default: now.")
    ends_at: datetime | None = None
    comment: str = ""
    created_by: str = Field("", description="Default: the token's label.")


class SilenceOut(BaseModel):
    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    origin: str = Field(description="file: in the rule file; api: made by the CLI or API.")
    state: str = Field(description="active, upcoming or expired")


class SilencesOut(BaseModel):
    silences: list[SilenceOut]


class AlertOut(BaseModel):
    rule: str
    fingerprint: str
    state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    active_since: datetime | None
    value: float | None
    threshold: float | None
    updated_at: datetime


class AlertsOut(BaseModel):
    firing: int
    pending: int
    alerts: list[AlertOut]


class TransitionOut(BaseModel):
    ts: datetime
    rule: str
    rule_kind: str
    fingerprint: str
    previous: str
    state: str
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    seq: int


class HistoryOut(BaseModel):
    transitions: list[TransitionOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "no, unknown or revoked token"),
        (403, "the token's role may not do this"),
        (422, "invalid parameters or body, each problem in errors"),
        (503, "Kafka (the configuration) or the warehouse is unreachable"),
    )
}
MALFORMED: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body cannot be read"}
}

#: The answers to applying a YAML file (rules or flags).
APPLY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    **MALFORMED,
    412: {"model": ErrorBody, "description": "If-Match names another version"},
    413: {"model": ErrorBody, "description": "over 1 MiB"},
    422: {"model": ErrorBody, "description": "problems, by line and field"},
}
#: A YAML request body, as the OpenAPI document describes it.
YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
#: Query parameters of applying a file.
DryRun = Annotated[bool, Query(description="Validate and diff only.")]
Source = Annotated[str, Query(description="Where the file comes from.")]
