"""The one scrubber: known secrets and anything that looks like a credential."""

from __future__ import annotations

import logging

import pytest

from bulkref.redact import MASK, RedactingFilter, redact, remember


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ("target=bearer%20abcdefghij", "abcdefghij"),
        ('{"refresh_token": "0.AXkA-rt-value", "x": 1}', "0.AXkA-rt-value"),
        ("grant_type=password&password=hunter2hunter2&client_secret=cs-value-1", "hunter2hunter2"),
        ("grant_type=password&password=hunter2hunter2&client_secret=cs-value-1", "cs-value-1"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl in a message", "eyJzdWIiOiJ4In0"),
        ("access_token=AT-123456789", "AT-123456789"),
    ],
)
def test_credential_shapes_are_masked(text: str, gone: str) -> None:
    out = redact(text)
    assert gone not in out and MASK in out


def test_a_remembered_secret_is_masked_wherever_it_appears() -> None:
    remember("plain-secret-without-shape")
    assert redact("x plain-secret-without-shape y") == f"x {MASK} y"
    remember("short")  # too short to be a secret worth the false positives
    assert redact("a short word") == "a short word"


def test_ordinary_text_is_left_alone() -> None:
    text = (
        "POST https://api.partner.microsoft.com/v1.0/engagements/referrals failed (HTTP 400 invalidRequest)"
    )
    assert redact(text) == text


def test_the_log_filter_scrubs_messages_and_arguments() -> None:
    record = logging.LogRecord(
        "bulkref.x", logging.INFO, __file__, 1, "sent %s", ("Bearer zzzzzzzzzz",), None
    )
    assert RedactingFilter().filter(record)
    assert "zzzzzzzzzz" not in record.getMessage()
