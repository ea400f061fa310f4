"""The session's state table and handler table agree (STYLE.md rule 5)."""

from __future__ import annotations

from pillarbox.imap import engine as wire
from pillarbox.imap import mailboxes, messages
from pillarbox.imap.session import ALLOWED, EVENT_HANDLERS, HANDLERS, ImapSession, LoggedOut


def test_every_command_of_every_state_has_a_handler() -> None:
    for state, allowed in ALLOWED.items():
        missing = {c.__name__ for c in allowed} - {c.__name__ for c in HANDLERS}
        assert not missing, f"{state.__name__}: {missing}"


def test_message_commands_have_their_own_handlers() -> None:
    delegated = {c for c, h in HANDLERS.items() if h is ImapSession.on_message_command}
    assert delegated == set(messages.HANDLERS)


def test_every_engine_event_has_a_handler() -> None:
    events = {
        wire.Command,
        wire.ParseError,
        wire.LiteralPending,
        wire.AuthenticateResponse,
        wire.Done,
        wire.ConnectionClosed,
    }
    assert set(EVENT_HANDLERS) == events


def test_logout_state_allows_nothing() -> None:
    assert ALLOWED[LoggedOut] == frozenset()


def test_mailbox_commands_have_their_own_handlers() -> None:
    delegated = {c for c, h in HANDLERS.items() if h is ImapSession.on_mailbox_command}
    assert delegated == set(mailboxes.HANDLERS)
