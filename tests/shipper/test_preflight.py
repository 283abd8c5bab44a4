"""Start-up checks of the shipper's settings."""

from __future__ import annotations

import logging

import pytest

from shipper.config import ShipperConfig
from shipper.preflight import check_token


def test_no_token_is_a_warning_naming_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    """Starting without LOGPIPE_TOKEN or LOGPIPE_TOKEN_FILE logs one warning saying what to set."""
    with caplog.at_level(logging.WARNING, logger="logpipe.shipper"):
        check_token(ShipperConfig(token=None, token_file=None))
    (record,) = caplog.records
    assert "set LOGPIPE_TOKEN (or LOGPIPE_TOKEN_FILE)" in record.getMessage()


def test_a_token_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    """With a token set, nothing is logged."""
    with caplog.at_level(logging.WARNING, logger="logpipe.shipper"):
        check_token(ShipperConfig(token="t"))
    assert caplog.records == []
