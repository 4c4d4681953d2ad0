"""The dashboard's entry page shows what the signed log entries say (from the verified receipt, not the
``disclosures`` table) and flags a table row that disagrees, column by column.

Before: the page showed only the ``disclosures`` row; with ``principal`` and ``rows`` edited in the database the
receipt still verified and the page showed the edited recipient and count with a green "Receipt verified." notice.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.gateway.harness import Env
from tests.gateway.test_ui import extract, signed_in

pytestmark = pytest.mark.anyio


def _section(html: str, element_id: str) -> str:
    match = re.search(rf'<(section|div|p)[^>]*id="{element_id}".*?</\1>', html, re.S)
    assert match is not None, element_id
    return match.group(0)


async def _page(env: Env, disclosure_id: str) -> str:
    async with signed_in(env) as client:
        response = await client.get(f"/ui/disclosures/{disclosure_id}")
    assert response.status_code == 200
    return response.text


async def test_the_page_shows_the_signed_entries_and_that_the_table_agrees(env: Env) -> None:
    disclosure_id = (await extract(env, body={"limit": 4})).headers["x-disclosure-id"]
    html = await _page(env, disclosure_id)
    signed = _section(html, "signed-entry")
    assert "pku-education-lab" in signed and "research-continuity" in signed
    assert re.search(r"<dt>Rows</dt><dd>4</dd>", signed)
    assert re.search(r"Subjects released \(committed\)</dt><dd>4 ", signed)
    assert "agrees with the signed log entries" in _section(html, "projection-status")
    assert 'role="alert" id="projection-status"' not in html


async def test_an_edited_disclosures_row_is_flagged_with_the_signed_values(env: Env) -> None:
    disclosure_id = (await extract(env, body={"limit": 4})).headers["x-disclosure-id"]
    with env.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE disclosures SET principal = 'finance-bureau', rows = 40, purpose = 'audit' WHERE id = :i"),
            {"i": disclosure_id},
        )
    html = await _page(env, disclosure_id)
    assert "Receipt verified." in html  # the entries themselves are intact ...
    warning = _section(html, "projection-status")  # ... but the table is not
    assert 'role="alert"' in warning and "disagrees with the signed log entries" in warning
    assert re.search(r"<th scope=\"row\">principal</th><td>finance-bureau</td><td>pku-education-lab</td>", warning)
    assert re.search(r"<th scope=\"row\">rows</th><td>40</td><td>4</td>", warning)
    assert re.search(r"<th scope=\"row\">purpose</th><td>audit</td><td>research</td>", warning)
    signed = _section(html, "signed-entry")
    assert "pku-education-lab" in signed and "finance-bureau" not in signed
    assert re.search(r"<dt>Rows</dt><dd>4</dd>", signed)


async def test_entries_that_do_not_verify_are_not_shown_as_signed(env: Env) -> None:
    disclosure_id = (await extract(env, body={"limit": 4})).headers["x-disclosure-id"]
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE log_entries SET body = replace(body, 'pku-education-lab', 'finance-bureau') "
                "WHERE disclosure_id = :d AND kind = 'disclosure.started'"
            ),
            {"d": disclosure_id},
        )
    html = await _page(env, disclosure_id)
    assert "Receipt NOT verified" in html
    assert "could not be verified" in _section(html, "signed-entry")
    assert 'id="projection-status"' not in html
