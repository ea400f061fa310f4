"""SMTP server states and the commands each allows (RFC 5321 §4.1.4, RFC 3030, RFC 4954).

State is data: ``ALLOWED`` lists the verbs each state accepts and ``DENIED`` the reply
refusing the others (``BAD_SEQUENCE`` when not listed).  The engine moves between states
from the replies the session sends (see ``ServerEngine.send``).
"""

from __future__ import annotations

import enum
from typing import Final

from pillarbox.smtp import commands, replies
from pillarbox.smtp.replies import Reply


class State(enum.Enum):
    """Where the session is in RFC 5321 §4.1.4 command ordering."""

    GREETING = "greeting"  # the 220 greeting has not been sent yet
    REFUSED = "refused"  # greeting was 554: only QUIT (RFC 5321 §3.1)
    INITIAL = "initial"  # no HELO/EHLO yet (also after STARTTLS, RFC 3207 §4.2)
    READY = "ready"  # greeted, no transaction
    HAVE_MAIL = "have_mail"  # MAIL accepted
    HAVE_RCPT = "have_rcpt"  # at least one RCPT accepted
    IN_BDAT = "in_bdat"  # a non-last BDAT chunk accepted (RFC 3030 §2)
    BDAT_FAILED = "bdat_failed"  # a BDAT chunk failed: RSET needed (RFC 3030 §2)


_ANYTIME: Final = frozenset({"HELO", "EHLO", "NOOP", "RSET", "QUIT", "HELP", "VRFY", "EXPN"})
_NOT_IN_BDAT: Final = frozenset({"VRFY", "EXPN"})

#: Commands allowed in each state (RFC 5321 §4.1.4, RFC 3030 §2, RFC 4954 §4).
ALLOWED: Final[dict[State, frozenset[str]]] = {
    State.GREETING: _ANYTIME | {"VERB"},
    State.REFUSED: frozenset({"QUIT"}),
    State.INITIAL: _ANYTIME | {"VERB"},
    State.READY: _ANYTIME | {"MAIL", "STARTTLS", "AUTH", "ETRN", "VERB", "ONEX"},
    State.HAVE_MAIL: _ANYTIME | {"RCPT", "VERB"},
    State.HAVE_RCPT: _ANYTIME | {"RCPT", "DATA", "BDAT", "VERB"},
    State.IN_BDAT: (_ANYTIME - _NOT_IN_BDAT) | {"BDAT"},
    State.BDAT_FAILED: (_ANYTIME - _NOT_IN_BDAT) | {"MAIL"},
}

_TRANSACTION_STATES: Final = (State.HAVE_MAIL, State.HAVE_RCPT, State.IN_BDAT)


def _denials() -> dict[tuple[State, str], Reply]:
    """The 503 reply for a command that its state does not allow (default BAD_SEQUENCE)."""
    table: dict[tuple[State, str], Reply] = {}
    for state in (State.GREETING, State.INITIAL):
        for verb in ("MAIL", "RCPT", "DATA", "BDAT", "ETRN", "ONEX"):
            table[state, verb] = replies.HELO_FIRST
        for verb in commands.EHLO_ONLY - {"BDAT"}:
            table[state, verb] = replies.EHLO_FIRST
    for verb in ("RCPT", "DATA", "BDAT"):
        table[State.READY, verb] = replies.MAIL_FIRST
    for state in _TRANSACTION_STATES:
        table[state, "MAIL"] = replies.NESTED_MAIL
        for verb in ("AUTH", "STARTTLS", "ETRN", "ONEX"):
            table[state, verb] = replies.IN_TRANSACTION
    table[State.HAVE_MAIL, "DATA"] = replies.NO_VALID_RECIPIENTS
    table[State.HAVE_MAIL, "BDAT"] = replies.NO_VALID_RECIPIENTS
    table[State.IN_BDAT, "DATA"] = replies.DATA_AFTER_BDAT  # RFC 3030 §2
    table[State.BDAT_FAILED, "DATA"] = replies.DATA_AFTER_BDAT
    table[State.BDAT_FAILED, "BDAT"] = replies.BDAT_FAILED  # RFC 3030 §2
    for verb in commands.PARSERS.keys() - {"QUIT"} | {"BDAT"}:
        table.setdefault((State.REFUSED, verb), replies.NO_SERVICE)
    return table


#: (state, verb) -> the reply refusing it; anything else not ALLOWED gets BAD_SEQUENCE.
DENIED: Final = _denials()
