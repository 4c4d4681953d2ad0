"""The ``perturbation`` of an agreement's aggregate section: parsing, validation and what lint says about it."""

from __future__ import annotations

import pytest

from policies import Catalog, PolicyLoadError, parse_agreement
from policies.lint import lint_agreement
from policies.schema import schema_problems
from tests.conftest import demo_agreement_texts

STATS = demo_agreement_texts()["public-statistics.yaml"]
LINE = "  perturbation: cell_key   # ABS cell-key method: the same records always give the same published count\n"


def with_perturbation(value: str | None) -> str:
    assert LINE in STATS
    return STATS.replace(LINE, "" if value is None else f"  perturbation: {value}\n")


def lint_codes(catalog: Catalog, text: str) -> dict[str, str]:
    return {f.code: f.severity for f in lint_agreement(parse_agreement(text, catalog))}


def test_cell_key_shorthand_gets_the_documented_defaults(catalog: Catalog) -> None:
    spec = parse_agreement(STATS, catalog).aggregate
    assert spec is not None and spec.perturbation is not None
    assert dict(spec.perturbation) == {
        "method": "cell_key",
        "max_deviation": 3,
        "variance": 2.0,
        "magnitude_scale": 0.1,
    }


def test_explicit_parameters_and_none(catalog: Catalog) -> None:
    text = with_perturbation("{method: cell_key, max_deviation: 5, variance: 3.5, magnitude_scale: 0.2}")
    spec = parse_agreement(text, catalog).aggregate
    assert spec is not None and spec.perturbation is not None
    assert (spec.perturbation["max_deviation"], spec.perturbation["variance"]) == (5, 3.5)
    none = parse_agreement(with_perturbation("none"), catalog).aggregate
    absent = parse_agreement(with_perturbation(None), catalog).aggregate
    assert none is not None and none.perturbation is None
    assert absent is not None and absent.perturbation is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("noise", "perturbation is 'none', 'cell_key'"),
        ("{method: laplace}", "the only perturbation method is 'cell_key'"),
        ("{method: cell_key, max_deviation: 0}", "at least 1"),
        ("{method: cell_key, max_deviation: 2, variance: 2.5}", "too large for max_deviation 2"),
        ("{method: cell_key, variance: 0}", "greater than 0"),
        ("{method: cell_key, magnitude_scale: 2}", "at most 1"),
        ("{method: cell_key, seed: 4}", "seed"),
    ],
)
def test_invalid_perturbations_are_refused(catalog: Catalog, value: str, reason: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(with_perturbation(value), catalog)
    assert reason in str(info.value)
    assert "aggregate.perturbation" in str(info.value)


def test_perturbation_and_differential_privacy_exclude_each_other(catalog: Catalog) -> None:
    text = STATS.replace(LINE, LINE + "  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.1}\n")
    with pytest.raises(PolicyLoadError, match="exclude each other"):
        parse_agreement(text, catalog)


def test_schema_accepts_the_same_forms() -> None:
    for value in ("cell_key", "none", "{method: cell_key, max_deviation: 4, variance: 1.5}"):
        assert schema_problems(with_perturbation(value)) == []
    assert schema_problems(with_perturbation("noise")) != []
    assert schema_problems(with_perturbation("{method: cell_key, seed: 4}")) != []


def test_lint_wants_perturbation_for_outside_purposes(catalog: Catalog) -> None:
    assert "no-perturbation" not in lint_codes(catalog, STATS)
    assert lint_codes(catalog, with_perturbation(None))["no-perturbation"] == "error"
    assert lint_codes(catalog, with_perturbation("none"))["perturbation-declined"] == "warning"
    weak = with_perturbation("{method: cell_key, max_deviation: 1, variance: 0.3}")
    assert lint_codes(catalog, weak)["perturbation-weak"] == "warning"
    internal = with_perturbation(None).replace("purpose: official_statistics", "purpose: subsidy_payment")
    assert "no-perturbation" not in lint_codes(catalog, internal)
    private = (
        with_perturbation("none")
        .replace(
            "  min_cell: 10\n", "  min_cell: 10\n  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.1}\n"
        )
        .replace("  perturbation: none\n", "")
    )
    assert not {"no-perturbation", "perturbation-declined"} & set(lint_codes(catalog, private))
