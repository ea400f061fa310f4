"""A tiny IMAP session for engine transcripts: it answers every command with a tagged OK
that names what the parser understood, so transcripts show the grammar and the framing
(literals, IDLE, AUTHENTICATE, STARTTLS, limits) without any store."""

from __future__ import annotations

from pillarbox.imap import commands as c
from pillarbox.imap.engine import (
    NEED_DATA,
    AuthenticateResponse,
    Command,
    ConnectionClosed,
    Done,
    Event,
    ImapConfig,
    ImapEngine,
    LiteralPending,
    ParseError,
)
from pillarbox.imap.responses import (
    Continuation,
    Response,
    Status,
    Tagged,
    UntaggedStatus,
    capability,
    exists,
)

GREETING = UntaggedStatus(Status.OK, "Pillarbox IMAP4rev1 ready")


def new_engine(options: dict[str, str]) -> ImapEngine:
    """Options: tls-active, literal-plus, and integer limits such as max_literal=10."""
    limits = {
        key: int(value)
        for key, value in options.items()
        if key in ("max_line", "max_literal", "max_message_size", "max_discard")
    }
    config = ImapConfig(literal_minus="literal-plus" not in options, **limits)
    return ImapEngine(config, tls_active="tls-active" in options)


def describe(command: c.Command) -> str:
    """A short text naming the command and its main arguments."""
    name = type(command).__name__.upper()
    match command:
        case c.Login(user=user):
            return f"LOGIN {user}"
        case (
            c.Select(mailbox=mailbox)
            | c.Examine(mailbox=mailbox)
            | c.Delete(mailbox=mailbox)
            | c.Subscribe(mailbox=mailbox)
            | c.Unsubscribe(mailbox=mailbox)
        ):
            return f"{name} {mailbox}"
        case c.Create(mailbox=mailbox, special_use=uses):
            return " ".join(["CREATE", mailbox, *uses])
        case c.Rename(old=old, new=new):
            return f"RENAME {old} to {new}"
        case c.Append(mailbox=mailbox, flags=flags, message=message):
            return f"APPEND {mailbox} {' '.join(flags) or '-'} {len(message)} octets"
        case c.Status(mailbox=mailbox, items=items):
            return f"STATUS {mailbox} {' '.join(items)}"
        case c.List(reference=reference, patterns=patterns):
            return f"LIST [{reference}] {' '.join(patterns)}"
        case c.Fetch(sequence_set=numbers, items=items, uid=uid):
            names = " ".join(c.fetch_item_name(item).decode() for item in items)
            return f"{'UID ' if uid else ''}FETCH {numbers} {names}"
        case c.Store(sequence_set=numbers, mode=mode, flags=flags, silent=silent):
            text = f"STORE {numbers} {mode.value}{'.SILENT' if silent else ''} {' '.join(flags)}"
            return text.rstrip()
        case (
            c.Copy(sequence_set=numbers, mailbox=mailbox)
            | c.Move(sequence_set=numbers, mailbox=mailbox)
        ):
            return f"{name} {numbers} {mailbox}"
        case _:
            return name


class FakeSession:
    """Answers engine events; `run` feeds bytes and returns what the server wrote."""

    def __init__(self, engine: ImapEngine) -> None:
        self.engine = engine
        self.closed_by_peer = False
        self.commands: list[c.Command] = []

    def handle(self, event: Event) -> list[Response]:
        match event:
            case ParseError(response=response) | LiteralPending(response=response):
                return [response]
            case Command(tag=tag, command=command):
                self.commands.append(command)
                return self.on_command(tag, command)
            case AuthenticateResponse(tag=tag, line=line):
                if line == b"*":  # RFC 3501 §6.2.2: cancelled
                    return [Tagged(tag, Status.BAD, "AUTHENTICATE cancelled")]
                return [Tagged(tag, Status.OK, f"AUTHENTICATE got {line.decode()}")]
            case Done(tag=tag):
                return [Tagged(tag, Status.OK, "IDLE terminated")]
            case ConnectionClosed():
                self.closed_by_peer = True
        return []

    def on_command(self, tag: str, command: c.Command) -> list[Response]:
        match command:
            case c.Capability():
                return [
                    capability(["IMAP4rev1", self.engine.config.literal_capability]),
                    Tagged(tag, Status.OK, "CAPABILITY completed"),
                ]
            case c.Logout():
                return [
                    UntaggedStatus(Status.BYE, "Logging out"),
                    Tagged(tag, Status.OK, "LOGOUT completed"),
                ]
            case c.StartTls():
                return [Tagged(tag, Status.OK, "Begin TLS negotiation now")]
            case c.Idle():
                return [Continuation("idling")]
            case c.Authenticate(initial=None):
                return [Continuation("")]
            case c.Noop():
                return [exists(1), Tagged(tag, Status.OK, "NOOP completed")]
        return [Tagged(tag, Status.OK, describe(command))]

    def run(self, data: bytes) -> bytes:
        out: list[bytes] = []
        if not self.engine.closed:
            self.engine.receive_data(data)
        while not self.engine.closed:
            event = self.engine.next_event()
            if event is NEED_DATA:
                break
            out.extend(self.engine.send(response) for response in self.handle(event))
        return b"".join(out)
