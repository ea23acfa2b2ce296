"""The one reader of hand-written YAML documents (notices, activity configurations, tariffs)."""

from __future__ import annotations

import textwrap

import pytest

from guichet.billing.config import TariffError, parse_tariffs
from guichet.bookings.config import ConfigError, parse_config
from guichet.common.yamlreader import Map, Problem, ProblemsError, Reader, Seq, parse_yaml
from guichet.status.notice import NoticeError, parse_notice

DOC = textwrap.dedent("""\
    name: Ville
    sites:
      - slug: centre
      - slug: annexe
        opens: 2024-13-01
    """)


def test_values_remember_their_lines():
    doc = parse_yaml(DOC, "x.yaml")
    assert isinstance(doc, Map) and isinstance(doc["sites"], Seq)
    assert doc.key_lines == {"name": 1, "sites": 2}
    assert doc["sites"].item_lines == [3, 4]
    assert doc["sites"][1].key_lines["opens"] == 5
    # A date YAML cannot build stays text, for the reader to name with its line.
    assert doc["sites"][1]["opens"] == "2024-13-01"


def test_yaml_errors_and_duplicate_keys_are_problems_with_lines():
    with pytest.raises(ProblemsError) as exc:
        parse_yaml("a: 1\nb: [\n", "bad.yaml")
    (problem,) = exc.value.errors
    assert str(problem).startswith("bad.yaml:3: not valid YAML, column 1:")
    with pytest.raises(ProblemsError) as exc:
        parse_yaml("a: 1\nb: 2\na: 3\n", "twice.yaml")
    assert [str(p) for p in exc.value.errors] == [
        "twice.yaml:3: a: 'a' is given twice in the same block (first on line 1)"
    ]


def test_reader_collects_every_problem_in_line_order():
    doc = parse_yaml(DOC, "x.yaml")
    r = Reader("x.yaml")
    top = r.block(doc, "", 1, ("name", "sites"), ("name", "town"))
    for item, path, line in r.items(top, "sites", ""):
        site = r.block(item, path, line, ("slug", "name"), ("slug", "name"))
        r.date(site.get("opens", "2024-01-01"), r.line(site, "opens"), f"{path}.opens")
    r.items(top, "activities", "", required=True)
    error = ProblemsError(r.problems)
    assert [str(p) for p in error.errors] == [
        "x.yaml:1: activities: required",
        "x.yaml:1: town: required",
        "x.yaml:3: sites[0].name: required",
        "x.yaml:4: sites[1].name: required",
        "x.yaml:5: sites[1].opens: unknown field (expected one of: slug, name)",
        "x.yaml:5: sites[1].opens: expected a date written YYYY-MM-DD, not '2024-13-01'",
    ]
    assert str(error) == "\n".join(str(p) for p in error.errors)


@pytest.mark.parametrize(
    ("parse", "error"),
    [(parse_notice, NoticeError), (parse_config, ConfigError), (parse_tariffs, TariffError)],
)
def test_the_three_formats_report_yaml_problems_the_same_way(parse, error):
    with pytest.raises(error) as exc:
        parse("format: x\nformat: y\n", "f.yaml")
    assert isinstance(exc.value, ProblemsError)
    assert exc.value.errors == [
        Problem(
            "f.yaml", 2, "format", "'format' is given twice in the same block (first on line 1)"
        )
    ]
