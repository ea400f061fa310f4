"""The `pillarbox` command: parse arguments, then call into the app or the store.

Exit codes (DESIGN.md): 0 ok, 2 usage or configuration error (one line naming the
problem), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pillarbox import __version__, config, mailboxio
from pillarbox.auth.passwords import hash_password
from pillarbox.delivery import etrn, retry, sendmail
from pillarbox.directory.aliasfile import AliasFileError, load_aliases
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments or input: exit 2 with this one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"pillarbox: {message}\n")


Command = Callable[[api.Store, argparse.Namespace], Awaitable[None]]


# -- domain ----------------------------------------------------------------------------------


async def domain_add(store: api.Store, args: argparse.Namespace) -> None:
    domain = await store.add_domain(_require(args.domain, "domain add needs DOMAIN"))
    print(f"added domain {domain.name}")


async def domain_remove(store: api.Store, args: argparse.Namespace) -> None:
    await store.remove_domain(_require(args.domain, "domain remove needs DOMAIN"))
    print(f"removed domain {args.domain}")


async def domain_list(store: api.Store, args: argparse.Namespace) -> None:
    """All local domains; with DOMAIN, just that one (NotFound, exit 1, if not local)."""
    domains = [d.name for d in await store.list_domains()]
    if args.domain:
        wanted = args.domain.lower()
        if wanted not in domains:
            raise api.NotFound(f"domain {args.domain}")
        domains = [wanted]
    for name in domains:
        print(name)


# -- user ------------------------------------------------------------------------------------


def _read_secret(from_stdin: bool, what: str, flag: str) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = getpass.getpass(f"{what}: ")
        if getpass.getpass(f"{what} again: ") != secret:
            raise UsageError(f"the two {what.lower()}s differ")
    else:
        raise UsageError(f"give the {what.lower()} on standard input with {flag}")
    if not secret:
        raise UsageError(f"the {what.lower()} is empty")
    return secret


async def user_add(store: api.Store, args: argparse.Namespace) -> None:
    password = _read_secret(args.password_stdin, "Password", "--password-stdin")
    hashed = await asyncio.to_thread(hash_password, password)
    account = await store.add_account(args.address, hashed, name=args.name, quota=args.quota)
    print(f"added user {account.address}")


async def user_passwd(store: api.Store, args: argparse.Namespace) -> None:
    password = _read_secret(args.password_stdin, "Password", "--password-stdin")
    await store.set_password(args.address, await asyncio.to_thread(hash_password, password))
    print(f"changed password of {args.address}")


async def user_apop(store: api.Store, args: argparse.Namespace) -> None:
    secret = None if args.clear else _read_secret(args.secret_stdin, "Secret", "--secret-stdin")
    await store.set_apop_secret(args.address, secret)
    print(f"{'cleared' if secret is None else 'set'} APOP secret of {args.address}")


async def user_remove(store: api.Store, args: argparse.Namespace) -> None:
    await store.remove_account(args.address)
    print(f"removed user {args.address}")


async def user_list(store: api.Store, args: argparse.Namespace) -> None:
    for account in await store.list_accounts():
        quota = str(account.quota) if account.quota else "unlimited"
        print(f"{account.address}\t{account.name}\tquota={quota}")


# -- alias -----------------------------------------------------------------------------------


async def alias_add(store: api.Store, args: argparse.Namespace) -> None:
    alias = await store.add_alias(args.alias, args.targets)
    print(f"{alias.address}: {', '.join(alias.targets)}")


async def alias_remove(store: api.Store, args: argparse.Namespace) -> None:
    await store.remove_alias(args.alias)
    print(f"removed alias {args.alias}")


async def alias_list(store: api.Store, args: argparse.Namespace) -> None:
    for alias in await store.list_aliases():
        print(f"{alias.address}: {', '.join(alias.targets)}")


async def alias_import(store: api.Store, args: argparse.Namespace) -> None:
    try:
        entries = load_aliases(Path(args.file))
    except AliasFileError as error:
        raise UsageError(str(error)) from None
    for entry in entries:
        await store.add_alias(entry.name, entry.targets)
    print(f"imported {len(entries)} aliases from {args.file}")


# -- mailbox ---------------------------------------------------------------------------------


async def mailbox_import(store: api.Store, args: argparse.Namespace) -> None:
    account = await store.get_account(args.address)
    try:
        messages = mailboxio.read_messages(Path(args.path))
    except mailboxio.MailboxFormatError as error:
        raise UsageError(str(error)) from None
    await _ensure_mailbox(store, account.id, args.mailbox)
    count = 0
    for message in messages:
        await store.append(
            account.id, args.mailbox, message.body, message.flags, message.internaldate
        )
        count += 1
    print(f"imported {count} messages into {account.address} {args.mailbox}")


async def _ensure_mailbox(store: api.Store, account_id: api.AccountId, name: str) -> None:
    try:
        await store.get_mailbox(account_id, name)
    except api.NotFound:
        await store.create_mailbox(account_id, name)


async def mailbox_export(store: api.Store, args: argparse.Namespace) -> None:
    account = await store.get_account(args.address)
    mailbox = await store.get_mailbox(account.id, args.mailbox)
    out = sys.stdout.buffer
    for entry in await store.list_entries(mailbox.id):
        body = await store.get_body(entry.message_id)
        out.write(mailboxio.mbox_record(body, entry.internaldate, entry.flags))
    out.flush()


async def mailbox_list(store: api.Store, args: argparse.Namespace) -> None:
    account = await store.get_account(args.address)
    for mailbox in await store.list_mailboxes(account.id):
        use = f"\t{mailbox.special_use}" if mailbox.special_use else ""
        print(f"{mailbox.name}\t{mailbox.messages} messages\t{mailbox.size} bytes{use}")


# -- queue ---------------------------------------------------------------------------------


async def queue_list(store: api.Store, args: argparse.Namespace) -> None:
    print("id\tsender\trecipient\tattempts\tnext_attempt\tsize\tstate\tlast_result")
    for entry in await store.list_queue():
        state = "held" if entry.held else "queued"
        print(
            f"{entry.id}\t<{entry.envelope.sender}>\t<{entry.recipient.address}>\t"
            f"{entry.attempts}\t{entry.next_attempt.isoformat(timespec='seconds')}\t"
            f"{entry.size}\t{state}\t{entry.last_result}"
        )


async def queue_flush(store: api.Store, args: argparse.Namespace) -> None:
    if args.domain:  # also releases mail held for a hold domain, like ETRN (RFC 1985)
        count = await etrn.release(store, args.domain.lower())
        print(f"flushed {count} queued recipients for {args.domain}")
    else:
        print(f"flushed {await store.flush_queue()} queued recipients")


def _queue_id(text: str) -> api.QueueId:
    if not text.isdigit():
        raise UsageError(f"queue id must be a number: {text!r}")
    return api.QueueId(int(text))


async def queue_remove(store: api.Store, args: argparse.Namespace) -> None:
    await store.remove_queue_entry(_queue_id(args.id))
    print(f"removed queue entry {args.id}")


async def queue_hold(store: api.Store, args: argparse.Namespace) -> None:
    await store.hold_queue_entry(_queue_id(args.id), True)
    print(f"held queue entry {args.id}")


async def queue_release(store: api.Store, args: argparse.Namespace) -> None:
    await store.hold_queue_entry(_queue_id(args.id), False, note=retry.RELEASED_NOTE)
    print(f"released queue entry {args.id}")


# -- parser ----------------------------------------------------------------------------------


def _require(value: str | None, message: str) -> str:
    if not value:
        raise UsageError(message)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pillarbox",
        description="Pillarbox mail server: SMTP, POP3, IMAP and MX delivery in one program.",
        epilog="--config defaults to $PILLARBOX_CONFIG, else ./pillarbox.toml if it exists, "
        "else the built-in defaults. Exit codes: 0 ok, 2 usage or config error, 1 other.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--version", action="version", version=f"pillarbox {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("serve", help="run every listener until SIGTERM/SIGINT")
    commands.add_parser("check", help="validate the configuration and print it")
    _domain_parser(commands)
    _user_parser(commands)
    _alias_parser(commands)
    _mailbox_parser(commands)
    _queue_parser(commands)
    _sendmail_parser(commands)
    return parser


def _add(
    group: argparse._SubParsersAction[_Parser], name: str, command: Command, help_: str
) -> _Parser:
    sub: _Parser = group.add_parser(name, help=help_, description=help_)
    sub.set_defaults(handler=command)
    return sub


def _domain_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    group = commands.add_parser("domain", help="local mail domains").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    _add(group, "add", domain_add, "accept mail for DOMAIN").add_argument("domain")
    _add(group, "remove", domain_remove, "stop accepting mail for DOMAIN").add_argument("domain")
    _add(group, "list", domain_list, "list local domains (or check one)").add_argument(
        "domain", nargs="?"
    )


def _user_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    group = commands.add_parser("user", help="mail accounts").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    add = _add(group, "add", user_add, "create an account with INBOX and special-use folders")
    add.add_argument("address")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--name", default="", help="display name (shown by VRFY)")
    add.add_argument("--quota", type=int, default=0, metavar="BYTES", help="0 = unlimited")
    passwd = _add(group, "passwd", user_passwd, "change an account's password")
    passwd.add_argument("address")
    passwd.add_argument("--password-stdin", action="store_true")
    apop = _add(group, "apop", user_apop, "set the POP3 APOP shared secret (RFC 1939 §7)")
    apop.add_argument("address")
    apop.add_argument("--secret-stdin", action="store_true", help="read the secret from stdin")
    apop.add_argument("--clear", action="store_true", help="remove the secret")
    _add(group, "remove", user_remove, "delete an account and its mail").add_argument("address")
    _add(group, "list", user_list, "list accounts")


def _alias_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    group = commands.add_parser("alias", help="aliases and mailing lists").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    add = _add(group, "add", alias_add, "map ALIAS to one or more targets (several: a list)")
    add.add_argument("alias", help="name@domain, or a bare name for every local domain")
    add.add_argument("targets", nargs="+", metavar="TARGET")
    _add(group, "remove", alias_remove, "remove an alias").add_argument("alias")
    _add(group, "list", alias_list, "list aliases")
    _add(group, "import", alias_import, "import an aliases(5) file").add_argument("file")


def _mailbox_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    group = commands.add_parser("mailbox", help="import, export and list mailboxes").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    imp = _add(group, "import", mailbox_import, "import an mbox file or a Maildir")
    imp.add_argument("address")
    imp.add_argument("path")
    imp.add_argument("--mailbox", default=api.INBOX)
    exp = _add(group, "export", mailbox_export, "write a mailbox as mbox on stdout")
    exp.add_argument("address")
    exp.add_argument("--mailbox", default=api.INBOX)
    _add(group, "list", mailbox_list, "mailboxes with message counts and sizes").add_argument(
        "address"
    )


def _queue_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    group = commands.add_parser("queue", help="the outbound queue").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    _add(group, "list", queue_list, "list queued recipients with their state")
    _add(
        group, "flush", queue_flush, "deliver now (DOMAIN: also release its held mail)"
    ).add_argument("domain", nargs="?")
    _add(group, "remove", queue_remove, "drop a queue entry without a bounce").add_argument("id")
    _add(group, "hold", queue_hold, "keep a queue entry until released").add_argument("id")
    _add(group, "release", queue_release, "release a held queue entry").add_argument("id")


def _sendmail_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    text = "send the message on standard input, like sendmail(8)"
    sub = commands.add_parser(
        "sendmail",
        help=text,
        description=text + "; exit codes "
        "follow sysexits(3): 0 ok, 64 usage, 67 unknown user, 75 try later",
    )
    sub.add_argument(
        "-t",
        dest="from_headers",
        action="store_true",
        help="add the To, Cc and Bcc addresses as recipients; drop Bcc",
    )
    sub.add_argument(
        "-i",
        "-oi",
        dest="ignore_dots",
        action="store_true",
        help="a line with a single dot does not end the message",
    )
    sub.add_argument("-f", dest="sender", metavar="SENDER", help="envelope sender")
    sub.add_argument("recipients", nargs="*", metavar="RECIPIENT")


# -- entry point -----------------------------------------------------------------------------


async def _run_store_command(settings: config.Config, args: argparse.Namespace) -> None:
    store = SqliteStore(settings.database_path)
    await store.open()
    try:
        await args.handler(store, args)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(args.config)
        if args.command == "check":
            print(config.describe(settings))
            return EXIT_OK
        if args.command == "sendmail":
            return sendmail.run(
                settings,
                args.recipients,
                sender=args.sender,
                from_headers=args.from_headers,
                ignore_dots=args.ignore_dots,
            )
        if args.command == "serve":
            from pillarbox import app

            return app.serve(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(_run_store_command(settings, args))
    except (config.ConfigError, UsageError) as error:
        print(f"pillarbox: {error}", file=sys.stderr)
        return EXIT_USAGE
    except api.NotFound as error:
        print(f"pillarbox: not found: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except api.AlreadyExists as error:
        print(f"pillarbox: already exists: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except api.StoreError as error:
        print(f"pillarbox: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
