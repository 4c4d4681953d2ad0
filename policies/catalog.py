"""Dataset catalog: what a registry holds, column by column, and how sensitive each column is.

The catalog is the registry operator's description of their data. Agreements are checked against it: an agreement
can only name columns the catalog knows, operators must fit the column's type, and lint uses the column classes
(a ``direct_identifier`` released with ``keep`` to researchers is a finding).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ._yaml import Node, parse_yaml
from .errors import PolicyLoadError

__all__ = [
    "Catalog",
    "Column",
    "ColumnClass",
    "ColumnType",
    "Dataset",
    "RiskThreshold",
    "load_catalog",
    "parse_catalog",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Table names may be schema-qualified on PostgreSQL (registry.child_registry).
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class ColumnClass(enum.StrEnum):
    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    FREE_TEXT = "free_text"
    OTHER = "other"


class ColumnType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"


#: Formats let operators and detectors know what a string holds (mask an ID keeping its region, a phone its last 4).
KNOWN_FORMATS = frozenset(
    {"resident_id", "mobile", "person_name", "email", "bank_card", "student_number", "region_code", "address"}
)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    cls: ColumnClass
    format: str | None = None
    description: str = ""
    #: the registry column or expression name when it differs from the public name
    source: str | None = None

    @property
    def source_name(self) -> str:
        return self.source or self.name


@dataclass(frozen=True, slots=True)
class RiskThreshold:
    """The re-identification risk an approver may approve without a risk acceptance (docs/disclosure-control.md 0).

    Checked on approval of an outside-use agreement that releases records, over what an extract would release
    (after k-anonymity when the agreement has it). The defaults: 0.2 (smallest class of 5), a threshold commonly
    used for data shared with a known, contractually bound recipient (El Emam's guidance ranges about 0.33 to 0.05 by
    context), and the usual "no sample unique" rule of statistics offices.
    """

    max_prosecutor_risk: float = 0.2
    max_unique_records: int = 0

    def problems(self, prosecutor_max: float, unique_records: int) -> list[str]:
        """Why measured figures exceed the threshold (empty when they do not): names and numbers, no data."""
        found = []
        if prosecutor_max > self.max_prosecutor_risk:
            found.append(f"prosecutor risk {prosecutor_max:.4g} exceeds the catalog's {self.max_prosecutor_risk:.4g}")
        if unique_records > self.max_unique_records:
            found.append(f"{unique_records} unique record(s), the catalog allows {self.max_unique_records}")
        return found

    def describe(self) -> dict[str, float | int]:
        return {"max_prosecutor_risk": self.max_prosecutor_risk, "max_unique_records": self.max_unique_records}


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    title: str
    table: str
    subject_key: str
    columns: Mapping[str, Column]
    risk_threshold: RiskThreshold = RiskThreshold()
    #: other columns that identify the subject (national ID, student number): a guardian's accounting request may
    #: name the child by any of them; the gateway looks the registry key up by it (``policies.subjects``)
    subject_aliases: tuple[str, ...] = ()

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)


@dataclass(frozen=True, slots=True)
class Catalog:
    datasets: Mapping[str, Dataset]
    source: str = "<memory>"

    def dataset(self, name: str) -> Dataset | None:
        return self.datasets.get(name)

    def name_columns(self) -> list[tuple[Dataset, Column]]:
        """Columns holding person names, registry-wide (used to build name dictionaries for redaction)."""
        return [(d, c) for d in self.datasets.values() for c in d.columns.values() if c.format == "person_name"]


def _parse_column(name: str, node: Node) -> Column:
    if not _NAME.match(name):
        node.fail("column names are lowercase letters, digits and underscores, starting with a letter")
    spec = node.mapping(allowed={"type", "class", "format", "description", "source"}, required={"type", "class"})
    type_text = spec["type"].as_str()
    try:
        col_type = ColumnType(type_text)
    except ValueError:
        spec["type"].fail(f"unknown type {type_text!r} (expected one of {', '.join(t.value for t in ColumnType)})")
    cls_text = spec["class"].as_str()
    try:
        col_cls = ColumnClass(cls_text)
    except ValueError:
        spec["class"].fail(f"unknown class {cls_text!r} (expected one of {', '.join(c.value for c in ColumnClass)})")
    fmt = spec["format"].as_str() if "format" in spec else None
    if fmt is not None and fmt not in KNOWN_FORMATS:
        spec["format"].fail(f"unknown format {fmt!r} (expected one of {', '.join(sorted(KNOWN_FORMATS))})")
    source = spec["source"].as_str() if "source" in spec else None
    if source is not None and not _NAME.match(source):
        spec["source"].fail("source must be a plain column name")
    description = spec["description"].as_str(nonempty=False) if "description" in spec else ""
    return Column(name, col_type, col_cls, fmt, description, source)


def _parse_dataset(name: str, node: Node) -> Dataset:
    if not _NAME.match(name):
        node.fail("dataset names are lowercase letters, digits and underscores, starting with a letter")
    spec = node.mapping(
        allowed={"title", "table", "subject_key", "columns", "description", "risk_threshold", "subject_aliases"},
        required={"table", "subject_key", "columns"},
    )
    table = spec["table"].as_str()
    if not _TABLE.match(table):
        spec["table"].fail("table must be an identifier, optionally schema-qualified (schema.table)")
    columns = {col_name: _parse_column(col_name, col_node) for col_name, col_node in spec["columns"].items()}
    if not columns:
        spec["columns"].fail("a dataset needs at least one column")
    subject_key = spec["subject_key"].as_str()
    if subject_key not in columns:
        spec["subject_key"].fail(f"subject_key {subject_key!r} is not one of the dataset's columns")
    title = spec["title"].as_str() if "title" in spec else name
    threshold = _risk_threshold(spec["risk_threshold"]) if "risk_threshold" in spec else RiskThreshold()
    aliases = _subject_aliases(spec["subject_aliases"], columns, subject_key) if "subject_aliases" in spec else ()
    return Dataset(name, title, table, subject_key, MappingProxyType(columns), threshold, aliases)


def _subject_aliases(node: Node, columns: Mapping[str, Column], subject_key: str) -> tuple[str, ...]:
    """Each alias must be a text column of the dataset, other than the subject key, named once."""
    aliases: list[str] = []
    for item in node.as_list():
        name = item.as_str()
        column = columns.get(name)
        if column is None:
            item.fail(f"subject alias {name!r} is not one of the dataset's columns")
        if name == subject_key:
            item.fail(f"{name!r} is the subject_key itself, not an alias of it")
        if column.type is not ColumnType.STRING:
            item.fail(f"subject alias {name!r} is a {column.type.value} column; aliases are identifiers held as text")
        if name in aliases:
            item.fail(f"subject alias {name!r} is listed twice")
        aliases.append(name)
    return tuple(aliases)


def _risk_threshold(node: Node) -> RiskThreshold:
    spec = node.mapping(allowed={"max_prosecutor_risk", "max_unique_records"})
    default = RiskThreshold()
    risk = spec["max_prosecutor_risk"].as_number(exclusive_minimum=0) if "max_prosecutor_risk" in spec else None
    if risk is not None and risk > 1:
        spec["max_prosecutor_risk"].fail("max_prosecutor_risk is a probability, at most 1")
    uniques = spec["max_unique_records"].as_int(minimum=0, maximum=10**12) if "max_unique_records" in spec else None
    return RiskThreshold(
        default.max_prosecutor_risk if risk is None else float(risk),
        default.max_unique_records if uniques is None else uniques,
    )


def parse_catalog(text: str, source: str = "<memory>") -> Catalog:
    root = parse_yaml(text, source)
    spec = root.mapping(allowed={"datasets", "version"}, required={"datasets"})
    datasets = {name: _parse_dataset(name, node) for name, node in spec["datasets"].items()}
    if not datasets:
        spec["datasets"].fail("the catalog declares no dataset")
    return Catalog(MappingProxyType(datasets), source)


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyLoadError(str(path), "", f"cannot read file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(str(path), "", "file is not valid UTF-8") from exc
    return parse_catalog(text, str(path))
