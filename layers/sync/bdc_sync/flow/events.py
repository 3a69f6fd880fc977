"""The shapes of everything that travels between the functions."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, field_validator


class RunRequest(BaseModel):
    """A manual run: ``{"tables": ["asset_basics", ...]}`` (all tables if omitted)."""

    model_config = ConfigDict(extra="forbid")

    tables: list[str] | None = Field(default=None, min_length=1)
    trigger: Literal["manual", "schedule"] = "manual"

    @field_validator("tables")
    @classmethod
    def _strip(cls, tables: list[str] | None) -> list[str] | None:
        if tables is None:
            return None
        return list(dict.fromkeys(name.strip() for name in tables))


class WorkItem(BaseModel):
    """One message on the work queue: build a table (or one chunk of it) for a run."""

    run_id: str
    table: str
    chunk: int | None = None


class FinalizeItem(BaseModel):
    """One message on the finalize queue."""

    run_id: str


class WorkMessage(SqsRecordModel):
    body: Json[WorkItem]


class FinalizeMessage(SqsRecordModel):
    body: Json[FinalizeItem]
