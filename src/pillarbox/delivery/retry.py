"""Retry and give-up policy for queued recipients (pure): what to do after an attempt.

RFC 5321 §4.5.4.1: retry at intervals (`delivery.retry`, the last interval repeating) and
give up after `delivery.max_lifetime`; a transient failure (4xx, no connection) is retried,
a permanent one (5xx) fails the recipient at once. RFC 3461 §4.1: a delay notice is sent
once, after `delivery.delay_warning`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from pillarbox.config import DeliveryConfig
from pillarbox.smtp.client_wire import ServerReply

# Kept at the end of an entry's last_result once its delay notice went out, so that it
# goes out once only (the queue row has no column for it; `queue list` shows it).
DELAY_NOTICE_MARK: Final = " [delay notice sent]"
# last_result of an entry for a hold domain that an ETRN or `queue flush` released.
RELEASED_NOTE: Final = "released for delivery"
# last_result of an entry kept for a hold domain until ETRN.
HELD_NOTE: Final = "held for ETRN (hold domain)"


@dataclass(frozen=True, slots=True)
class Delivered:
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class Failed:
    """Permanent failure (or expiry): bounce, and drop the entry."""

    reply: ServerReply
    status: str  # RFC 3463 code for the DSN, always 5.x.x
    expired: bool = False


@dataclass(frozen=True, slots=True)
class Retry:
    reply: ServerReply
    next_attempt: dt.datetime
    delay_notice: bool  # send the one delay DSN now
    last_result: str


Decision = Delivered | Failed | Retry


def reply_status(reply: ServerReply) -> str:
    """The reply's enhanced status code, or one derived from its class (RFC 3463 §3.1)."""
    return reply.status or f"{str(reply.code)[0]}.0.0"


def notice_sent(last_result: str) -> bool:
    return last_result.endswith(DELAY_NOTICE_MARK)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays: tuple[float, ...]
    delay_warning: float
    max_lifetime: float

    @classmethod
    def from_config(cls, config: DeliveryConfig) -> RetryPolicy:
        return cls(config.retry or (300.0,), config.delay_warning, config.max_lifetime)

    def delay(self, attempts: int) -> dt.timedelta:
        """The wait after the attempt numbered `attempts` (0 = the first one)."""
        return dt.timedelta(seconds=self.delays[min(attempts, len(self.delays) - 1)])

    def give_up_at(self, created: dt.datetime) -> dt.datetime:
        return created + dt.timedelta(seconds=self.max_lifetime)

    def decide(
        self,
        reply: ServerReply,
        *,
        created: dt.datetime,
        attempts: int,
        last_result: str,
        now: dt.datetime,
    ) -> Decision:
        """The outcome of one attempt for one recipient (`attempts` made before it)."""
        if reply.positive:
            return Delivered(reply)
        if reply.permanent:
            status = reply_status(reply)
            return Failed(reply, status if status.startswith("5") else "5.0.0")
        next_attempt = now + self.delay(attempts)
        if now >= self.give_up_at(created):
            # RFC 3463 X.4.7: delivery time expired.
            return Failed(reply, "5.4.7", expired=True)
        next_attempt = min(next_attempt, self.give_up_at(created))
        already = notice_sent(last_result)
        warn = not already and now - created >= dt.timedelta(seconds=self.delay_warning)
        text = str(reply) + (DELAY_NOTICE_MARK if warn or already else "")
        return Retry(reply, next_attempt, warn, text)
