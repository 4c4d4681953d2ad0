from __future__ import annotations

import pytest

from gateway.demo.pii_eval import EvalSet, make_eval_set
from transforms.redaction import ContextMatcher, NameDictionary

#: The demo catalog's context columns of the children dataset and their formats.
FORMATS = {
    "national_id": "resident_id",
    "name": "person_name",
    "student_number": "student_number",
    "guardian_name": "person_name",
    "guardian_phone": "mobile",
    "guardian_national_id": "resident_id",
}


@pytest.fixture(scope="session")
def eval_set() -> EvalSet:
    return make_eval_set(3000, seed=11)


@pytest.fixture(scope="session")
def names(eval_set: EvalSet) -> NameDictionary:
    return NameDictionary(eval_set.registry_names)


@pytest.fixture(scope="session")
def matcher() -> ContextMatcher:
    return ContextMatcher(FORMATS)
