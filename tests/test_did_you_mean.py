"""One "did you mean" for every message: folded comparison, one cut-off, the option as written."""

from __future__ import annotations

from bulkref.spec.enums import closest


def test_closest_compares_folded_and_returns_the_option_as_written() -> None:
    assert closest("partner led", ["Private", "Partner-led", "Co-sell"]) == "Partner-led"
    assert closest("Germny", ["Germany", "Greece", "France"]) == "Germany"
    assert closest("Cusotmer Name", ["Customer Name", "Deal Name"]) == "Customer Name"


def test_closest_answers_none_when_nothing_is_near() -> None:
    assert closest("Zanzibar", ["Private", "Partner-led", "Co-sell"]) is None
    assert closest("", ["Private"]) is None


def test_a_stricter_cut_off_refuses_a_looser_match() -> None:
    assert closest("Deal Nam", ["Deal Name"], cutoff=0.7) == "Deal Name"
    assert closest("Dl Nm", ["Deal Name"], cutoff=0.95) is None
