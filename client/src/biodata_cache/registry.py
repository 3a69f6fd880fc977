"""The cache registry (``cache_registry.json``) as plain objects.

``get_cache_registry()`` returned a pydantic ``CacheRegistry`` with a ``tables`` list
in 0.x; these dataclasses keep that shape (``registry.tables[0].name``,
``table.columns[0].description``) without pydantic, and add ``to_frame()`` for a
one-row-per-table DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from biodata_cache.catalog import UnknownTableError

if TYPE_CHECKING:
    import pandas as pd

# Fields of the public contract; anything else an entry carries lands in ``extra``.
_KNOWN = {
    "name",
    "description",
    "location",
    "partitioned",
    "partition_key",
    "type",
    "columns",
    "column_types",
    "status",
    "rows",
    "last_built",
    "last_checked",
    "last_run_id",
}


@dataclass(frozen=True)
class RegistryColumn:
    """One column of a registry entry."""

    name: str
    description: str = ""
    type: str | None = None


@dataclass(frozen=True)
class RegistryTable:
    """One table of the registry: where it is, its columns and its last build."""

    name: str
    description: str
    location: str
    partitioned: bool
    partition_key: str | None
    type: str
    columns: list[RegistryColumn]
    status: str | None = None
    rows: int | None = None
    last_built: str | None = None
    last_checked: str | None = None
    last_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> RegistryTable:
        types = entry.get("column_types") or {}
        columns = []
        for column in entry.get("columns") or []:
            if isinstance(column, str):  # tolerate the bare-name form
                column = {"name": column}
            name = str(column.get("name", ""))
            columns.append(RegistryColumn(name, str(column.get("description", "")), types.get(name)))
        return cls(
            name=str(entry["name"]),
            description=str(entry.get("description", "")),
            location=str(entry.get("location", "")),
            partitioned=bool(entry.get("partitioned", False)),
            partition_key=entry.get("partition_key"),
            type=str(entry.get("type", "")),
            columns=columns,
            status=entry.get("status"),
            rows=entry.get("rows"),
            last_built=entry.get("last_built"),
            last_checked=entry.get("last_checked"),
            last_run_id=entry.get("last_run_id"),
            extra={k: v for k, v in entry.items() if k not in _KNOWN},
        )


@dataclass(frozen=True)
class CacheRegistry:
    """All tables of one cache version, in registry order."""

    version: str
    tables: list[RegistryTable]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, document: dict[str, Any], folder: str) -> CacheRegistry:
        tables = [RegistryTable.from_dict(e) for e in document.get("tables", []) if "name" in e]
        return cls(version=str(document.get("version") or folder), tables=tables, raw=document)

    @property
    def names(self) -> list[str]:
        return [table.name for table in self.tables]

    def get(self, name: str) -> RegistryTable | None:
        """The entry of ``name``, or None."""
        for table in self.tables:
            if table.name == name:
                return table
        return None

    def __getitem__(self, name: str) -> RegistryTable:
        table = self.get(name)
        if table is None:
            raise UnknownTableError(
                f"table {name!r} is not in cache version {self.version}; "
                f"its tables: {', '.join(sorted(self.names))}"
            )
        return table

    def __contains__(self, name: object) -> bool:
        return any(table.name == name for table in self.tables)

    def __iter__(self) -> Iterator[RegistryTable]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def to_frame(self) -> pd.DataFrame:
        """One row per table: name, description, location, type, partitioning, columns, build."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "name": t.name,
                    "description": t.description,
                    "location": t.location,
                    "type": t.type,
                    "partitioned": t.partitioned,
                    "partition_key": t.partition_key,
                    "columns": t.column_names,
                    "rows": t.rows,
                    "status": t.status,
                    "last_built": t.last_built,
                }
                for t in self.tables
            ]
        )
