"""``explain``'s table reads as exclusion counts: every reason column says it counts the
events it excluded, next to the postbacks fired."""

from __future__ import annotations

import re

from postback_lab import build_plan, read_events, read_rules

EVENTS = """
transaction_id,event_type,status,goal,occurred_at,offer_id,publisher_id,click_id
t1,conversion,approved,sale,2024-01-01T00:00:00Z,1,7,c1
t2,click,approved,sale,2024-01-01T00:00:00Z,1,7,c2
t3,conversion,approved,sale,2024-01-01T00:00:00Z,2,7,c3
t4,conversion,pending,sale,2024-01-01T00:00:00Z,1,7,c4
"""

RULES = """
postbacks:
  - name: sales
    offers: [1]
    fire_on: approved
    url: https://p.example/?c={click_id}
"""

LABELS = [
    "rule",
    "fired",
    "excluded: rule disabled",
    "excluded: wrong event type",
    "excluded: offer out of scope",
    "excluded: publisher out of scope",
    "excluded: status",
    "excluded: rejection reason",
    "excluded: goal",
    "excluded: missing macro value",
    "excluded: superseded within the delay",
    "excluded: duplicate",
    "excluded: invalid body",
]


def test_labelled_table_and_html_headers(write):
    plan = build_plan(read_events(write("e.csv", EVENTS)), read_rules(write("r.yaml", RULES)))
    labelled = plan.explain().to_polars(labels=True)
    assert labelled.columns == LABELS
    assert labelled.row(0) == ("sales", 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0)
    headers = re.findall(r"<th( [^>]*)?>(.*?)</th>", plan.explain()._repr_html_())
    assert [text for _, text in headers] == LABELS
    # the data frame keeps its short reason codes for code that selects columns
    assert plan.explain().to_polars().columns[:3] == ["rule", "disabled", "type"]
