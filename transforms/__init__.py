"""Transforms: field operators, compilation of a release plan into a fast row function, serializers.

Pure: no I/O, no web framework, no database, no pycryptodome (key bytes come from the caller; HMAC is the standard
library's SHA-256). Typical use, once per request::

    compiled = compile_plan(plan, keys)            # operators built, row function generated
    writer = writer_for(plan.format, compiled.columns)
    yield writer.header()
    for batch in fetched_batches:
        yield writer.batch(compiled.rows(batch))
"""

from .compile import (
    CompiledPlan,
    FieldOperator,
    FieldSpec,
    KeySource,
    PlanSpec,
    RedactorFactory,
    compile_fields,
    compile_plan,
)
from .dates import DateShiftOp, SubjectOffsets, as_date
from .errors import PlanCompileError, TransformError, ValueTransformError
from .generalize import AgeBandOp, BucketOp, DateTruncOp, PrefixOp, age_in_years
from .mask import MaskOp, mask_text
from .operators import ContextRedactOp, RedactOp, Redactor, RowOperator, SubjectOperator, ValueOperator
from .redact_basic import SUPPORTED_ENTITIES, BasicRedactor
from .rounding import RoundOp
from .serialize import FORMULA_PREFIXES, CsvWriter, NdjsonWriter, neutralize_formula, writer_for
from .tokenize import TOKEN_ALPHABET, HmacSha256, TokenizeOp, normalize_identifier, token

__all__ = [
    "FORMULA_PREFIXES",
    "SUPPORTED_ENTITIES",
    "TOKEN_ALPHABET",
    "AgeBandOp",
    "BasicRedactor",
    "BucketOp",
    "CompiledPlan",
    "ContextRedactOp",
    "CsvWriter",
    "DateShiftOp",
    "DateTruncOp",
    "FieldOperator",
    "FieldSpec",
    "HmacSha256",
    "KeySource",
    "MaskOp",
    "NdjsonWriter",
    "PlanCompileError",
    "PlanSpec",
    "PrefixOp",
    "RedactOp",
    "Redactor",
    "RedactorFactory",
    "RoundOp",
    "RowOperator",
    "SubjectOffsets",
    "SubjectOperator",
    "TokenizeOp",
    "TransformError",
    "ValueOperator",
    "ValueTransformError",
    "age_in_years",
    "as_date",
    "compile_fields",
    "compile_plan",
    "mask_text",
    "neutralize_formula",
    "normalize_identifier",
    "token",
    "writer_for",
]
