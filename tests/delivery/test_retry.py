"""Retry policy (pure): which replies retry, when, and when to warn or give up."""

from __future__ import annotations

import datetime as dt

from pillarbox.config import DeliveryConfig
from pillarbox.delivery.retry import (
    DELAY_NOTICE_MARK,
    Decision,
    Delivered,
    Failed,
    Retry,
    RetryPolicy,
)
from pillarbox.smtp.client_wire import ServerReply, synthetic

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
POLICY = RetryPolicy.from_config(
    DeliveryConfig(retry=(60.0, 300.0), delay_warning=600.0, max_lifetime=3600.0)
)
BUSY = synthetic(450, "4.2.1", "busy")


def decide(reply: ServerReply, minutes: float, attempts: int = 0, last: str = "") -> Decision:
    now = T0 + dt.timedelta(minutes=minutes)
    return POLICY.decide(reply, created=T0, attempts=attempts, last_result=last, now=now)


def test_2xx_is_delivered_and_5xx_fails_at_once() -> None:
    assert isinstance(decide(synthetic(250, "2.0.0", "ok"), 0), Delivered)
    failed = decide(ServerReply(550, ("no such user",)), 0)
    assert isinstance(failed, Failed) and failed.status == "5.0.0" and not failed.expired


def test_4xx_retries_after_the_scheduled_interval_the_last_one_repeating() -> None:
    first = decide(BUSY, 0, attempts=0)
    assert isinstance(first, Retry) and first.next_attempt == T0 + dt.timedelta(seconds=60)
    later = decide(BUSY, 1, attempts=5)
    assert isinstance(later, Retry)
    assert later.next_attempt == T0 + dt.timedelta(minutes=1, seconds=300)
    assert later.last_result == "450 4.2.1 busy" and not later.delay_notice


def test_one_delay_notice_after_delay_warning() -> None:
    warn = decide(BUSY, 11, attempts=3)
    assert isinstance(warn, Retry) and warn.delay_notice
    assert warn.last_result == "450 4.2.1 busy" + DELAY_NOTICE_MARK
    again = decide(BUSY, 20, attempts=4, last=warn.last_result)
    assert isinstance(again, Retry) and not again.delay_notice
    assert again.last_result.endswith(DELAY_NOTICE_MARK)  # the mark is kept


def test_expiry_fails_with_5_4_7_and_the_last_retry_is_at_the_deadline() -> None:
    near = decide(BUSY, 58, attempts=9)
    assert isinstance(near, Retry) and near.next_attempt == T0 + dt.timedelta(hours=1)
    expired = decide(BUSY, 60, attempts=10)
    assert isinstance(expired, Failed) and expired.expired and expired.status == "5.4.7"
