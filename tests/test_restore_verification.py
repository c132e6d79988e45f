"""A faithful restore passes; planted faults fail "matches its state at the backup" by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_drill

SCENARIO = '''
  Scenario: {name}
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 500 rows
    And a backup of "shop" is taken
    When "shop" is lost
    And "shop" is restored from its latest backup
    And SQL is run on "shop":
      """
      {sql}
      """
    Then "shop" matches its state at the backup
'''

# name -> (planted fault, what the failure message must say)
FAULTS = {
    "faithful restore": ("SELECT 1", None),
    "a changed row": ("UPDATE users SET full_name = 'Mallory' WHERE id = 7",
                      "table public.users: content differs with the same count (100 rows)"),
    "a missing row": ("DELETE FROM order_items WHERE id = 3",
                      "table public.order_items: 200 rows at the backup, 199 now (1 missing)"),
    "a dropped index": ("DROP INDEX orders_user_id_idx",
                        "table public.orders: index orders_user_id_idx missing"),
    "a missing table": ("DROP TABLE order_items",
                        "table public.order_items: missing (it held 200 rows at the backup)"),
    "a changed sequence": ("SELECT setval('order_items_id_seq', 9999)",
                           "sequence public.order_items_id_seq: 200 at the backup, 9999 now"),
    # Schema faults the README promises to catch, each with the same data: only the catalog differs.
    "a dropped constraint": ("ALTER TABLE orders DROP CONSTRAINT orders_status_check",
                             "table public.orders: constraint orders_status_check missing (was: CHECK ((status = "
                             "ANY (ARRAY['pending'::text, 'paid'::text, 'shipped'::text, 'cancelled'::text]))))"),
    "a changed constraint": ("ALTER TABLE order_items DROP CONSTRAINT order_items_quantity_check, "
                             "ADD CONSTRAINT order_items_quantity_check CHECK (quantity >= 0)",
                             "table public.order_items: constraint order_items_quantity_check changed "
                             "(was: CHECK ((quantity > 0)); now: CHECK ((quantity >= 0)))"),
    "an added column": ("ALTER TABLE users ADD COLUMN nickname text",
                        "table public.users: column nickname added (now: #12 text)"),
    "a retyped column": ("ALTER TABLE orders ALTER COLUMN note TYPE varchar(500)",
                         "table public.orders: column note changed (was: #6 text; now: #6 character varying(500))"),
    "an extra table": ("CREATE TABLE audit (id int); INSERT INTO audit VALUES (1), (2)",
                       "table public.audit: present now but not at the backup (2 rows)"),
}


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One drill run holding every scenario (one throwaway cluster each)."""
    root: Path = tmp_path_factory.mktemp("faults")
    feature = "Feature: planted faults\n" + "".join(
        SCENARIO.format(name=name, sql=sql) for name, (sql, _) in FAULTS.items())
    (root / "features").mkdir()
    (root / "features" / "faults.feature").write_text(feature, encoding="utf-8")
    return run_drill(root, "run")


def test_faithful_restore_passes(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["shop"]
    assert prints["differences"] == []
    assert prints["before"]["parts"] == prints["after"]["parts"]
    assert prints["before"]["total"] == 500


@pytest.mark.parametrize("name", [n for n, (_, msg) in FAULTS.items() if msg])
def test_planted_fault_fails_with_a_message_naming_it(fault_run: Any, name: str) -> None:
    expected = FAULTS[name][1]
    scenario = fault_run.failed_verification(name, "shop", expected)
    # The difference is also evidence for the report, not only an error string.
    differences = scenario["evidence"]["fingerprints"]["shop"]["differences"]
    assert any(expected in d["message"] for d in differences)
    # Only the table (or sequence) of the planted fault differs, with what it owns (a dropped table takes its
    # serial's sequence along): nothing else is reported by mistake.
    named = expected.split(":")[0].split(" ", 1)[1]  # "table public.orders" -> "public.orders"
    assert all(d["message"].split(":")[0].split(" ", 1)[1].startswith(named) for d in differences), differences


def test_a_failed_verification_fails_the_run(fault_run: Any) -> None:
    assert fault_run.code == 1
    assert fault_run.results["status"] == "failed"
    assert f"1/{len(FAULTS)} scenarios passed" in fault_run.stdout
