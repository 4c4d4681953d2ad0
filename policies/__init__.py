"""Policies: dataset catalogs, data-sharing agreements, validation, lint, and release plans.

Pure: nothing here performs I/O except the explicit ``load_*`` helpers that read a file the caller names.
"""

from .agreement import (
    OPERATIONS,
    AggregateSpec,
    Agreement,
    EgressSpec,
    KAnonymitySpec,
    Limits,
    ReidentificationSpec,
    load_agreement,
    load_agreements,
    parse_agreement,
)
from .catalog import Catalog, Column, ColumnClass, ColumnType, Dataset, load_catalog, parse_catalog
from .errors import FilterError, PolicyError, PolicyLoadError, RequestError, UnknownFieldError
from .filters import Filter, parse_filters
from .lint import Finding, lint_agreement
from .plan import (
    FORMATS,
    ExtractRequest,
    OperationNotAllowedError,
    OutputField,
    ReleasePlan,
    parse_extract_request,
    plan_extract,
)
from .rules import (
    AgeBand,
    Bucket,
    DateShift,
    DateTrunc,
    Drop,
    Keep,
    Mask,
    Prefix,
    Redact,
    Round,
    Rule,
    Tokenize,
    describe_rule,
)

__all__ = [
    "FORMATS",
    "OPERATIONS",
    "AgeBand",
    "AggregateSpec",
    "Agreement",
    "Bucket",
    "Catalog",
    "Column",
    "ColumnClass",
    "ColumnType",
    "Dataset",
    "DateShift",
    "DateTrunc",
    "Drop",
    "EgressSpec",
    "ExtractRequest",
    "Filter",
    "FilterError",
    "Finding",
    "KAnonymitySpec",
    "Keep",
    "Limits",
    "Mask",
    "OperationNotAllowedError",
    "OutputField",
    "PolicyError",
    "PolicyLoadError",
    "Prefix",
    "Redact",
    "ReidentificationSpec",
    "ReleasePlan",
    "RequestError",
    "Round",
    "Rule",
    "Tokenize",
    "UnknownFieldError",
    "describe_rule",
    "lint_agreement",
    "load_agreement",
    "load_agreements",
    "load_catalog",
    "parse_agreement",
    "parse_catalog",
    "parse_extract_request",
    "parse_filters",
    "plan_extract",
]
