"""Independent IMAP clients against the real server: imapclient, mbsync (isync), getmail6."""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

USER = "tyler@pillarbox.test"


def message(n: int, subject: str = "") -> bytes:
    return (
        f"From: Mac <mac@pillarbox.test>\r\nTo: Tyler <{USER}>\r\n"
        f"Subject: {subject or f'Note {n}'}\r\nMessage-ID: <note{n}@pillarbox.test>\r\n"
        f"\r\nNote number {n}.\r\n"
    ).encode()


def deliver(server: Server, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail("mac@pillarbox.test", [USER], message(n))


def imap(server: Server) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    client.login(USER, "secret")
    return client


# -- imapclient ------------------------------------------------------------------------


def test_imapclient_session(server: Server) -> None:
    for n in range(3):
        deliver(server, n)
    with IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        assert b"IDLE" in client.capabilities() and b"MOVE" in client.capabilities()
        names = [name for _, _, name in client.list_folders()]
        assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= set(names)
        sent = client.find_special_folder(b"\\Sent")
        assert sent == "Sent"
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 3 and b"HIGHESTMODSEQ" in info
        uids = client.search(["UNSEEN"])
        assert uids == [1, 2, 3]
        data = client.fetch(uids, ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODY.PEEK[TEXT]"])
        assert data[2][b"ENVELOPE"].subject == b"Note 1"
        assert data[2][b"BODY[TEXT]"] == b"Note number 1.\r\n"
        client.add_flags([1], [b"\\Seen", b"$Important"])
        assert client.search(["SEEN"]) == [1]
        assert b"$Important" in client.get_flags([1])[1]
        client.create_folder("Projects/2024")
        client.move([2], "Projects/2024")
        client.copy([3], "Archive")
        assert client.folder_status("Projects/2024", ["MESSAGES"])[b"MESSAGES"] == 1
        assert client.search(["ALL"]) == [1, 3]
        uid = client.append("Drafts", message(9), flags=[b"\\Draft"])
        assert b"APPENDUID" in uid
        client.delete_messages([3])
        client.expunge()
        assert client.search(["ALL"]) == [1]
        client.logout()


def test_imapclient_idle_sees_new_mail(server: Server) -> None:
    with IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        client.select_folder("INBOX")
        client.idle()
        threading.Timer(0.3, deliver, (server, 1)).start()
        responses = client.idle_check(timeout=10)
        client.idle_done()
        assert (1, b"EXISTS") in responses
        client.logout()


# -- mbsync: two-way sync of several mailboxes -----------------------------------------

MBSYNC = shutil.which("mbsync")


def mbsync_config(server: Server, maildir: Path, state: Path) -> Path:
    config = server.root / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount pillarbox
Host 127.0.0.1
Port {server.ports["imap"]}
User {USER}
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account pillarbox

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState {state}/
"""
    )
    return config


def run_mbsync(config: Path) -> None:
    done = subprocess.run(
        [MBSYNC or "mbsync", "-c", str(config), "-a"], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def maildir_files(folder: Path) -> dict[str, str]:
    """Message-ID-free view: subject -> maildir flags of every message in the folder."""
    found = {}
    for sub in ("cur", "new"):
        for path in (folder / sub).glob("*"):
            subject = next(
                line for line in path.read_text().splitlines() if line.startswith("Subject: ")
            )
            flags = path.name.partition(":2,")[2]
            found[subject[9:]] = flags
    return found


def server_view(server: Server, mailbox: str) -> dict[str, str]:
    client = imap(server)
    client.select(mailbox, readonly=True)
    typ, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    view = {}
    if typ == "OK" and data != [None]:
        for item in data:
            if isinstance(item, tuple):
                subject = item[1].decode().strip()[9:]
                view[subject] = item[0].decode()
    client.logout()
    return view


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian isync) is not installed")
def test_mbsync_two_way_sync(server: Server) -> None:
    for n in range(3):
        deliver(server, n)
    client = imap(server)
    client.create("Work/Reports")
    client.append("Work/Reports", "(\\Flagged)", None, message(10, "Report"))
    client.append("Archive", "(\\Seen)", None, message(11, "Old"))
    client.logout()
    maildir, state = server.root / "Mail", server.root / "mbsync-state"
    state.mkdir()
    maildir.mkdir()
    config = mbsync_config(server, maildir, state)
    run_mbsync(config)
    assert set(maildir_files(maildir / "INBOX")) == {"Note 0", "Note 1", "Note 2"}
    assert maildir_files(maildir / "Work" / "Reports") == {"Report": "F"}
    assert maildir_files(maildir / "Archive") == {"Old": "S"}

    # Local changes: read "Note 0", delete "Note 1", file a new local message in Work/Reports.
    inbox = maildir / "INBOX"
    for path in [*(inbox / "cur").glob("*"), *(inbox / "new").glob("*")]:
        text = path.read_text()
        base = path.name.partition(":2,")[0]
        if "Subject: Note 0" in text:
            path.rename(inbox / "cur" / f"{base}:2,S")
        elif "Subject: Note 1" in text:
            path.rename(inbox / "cur" / f"{base}:2,T")
    (maildir / "Work" / "Reports" / "new" / "1700000000.local.host").write_bytes(
        message(12, "Local draft")
    )
    # Server-side changes: flag "Note 2", add a message.
    client = imap(server)
    client.select("INBOX")
    client.store("3", "+FLAGS", "(\\Flagged)")
    client.logout()
    deliver(server, 3)

    run_mbsync(config)
    remote_inbox = server_view(server, "INBOX")
    assert set(remote_inbox) == {"Note 0", "Note 2", "Note 3"}
    assert "\\Seen" in remote_inbox["Note 0"] and "\\Flagged" in remote_inbox["Note 2"]
    assert set(server_view(server, "Work/Reports")) == {"Report", "Local draft"}
    local_inbox = maildir_files(inbox)
    assert set(local_inbox) == {"Note 0", "Note 2", "Note 3"}
    assert "F" in local_inbox["Note 2"] and "S" in local_inbox["Note 0"]
    # A third run finds nothing to do and changes nothing.
    run_mbsync(config)
    assert set(maildir_files(inbox)) == {"Note 0", "Note 2", "Note 3"}


# -- getmail6 ------------------------------------------------------------------------------

GETMAIL = shutil.which("getmail")


@pytest.mark.skipif(GETMAIL is None, reason="getmail6 is not installed")
def test_getmail_fetches_over_imaps(server: Server) -> None:
    for n in range(2):
        deliver(server, n)
    home = server.root / "getmail"
    home.mkdir()
    # Under root, getmail delivers as nobody: the Maildir must be reachable for it.
    outside = Path(tempfile.mkdtemp(prefix="pillarbox-getmail-"))
    outside.chmod(0o755)
    maildir = outside / "Maildir"
    try:
        _getmail_run(server, home, maildir)
    finally:
        shutil.rmtree(outside)


def _getmail_run(server: Server, home: Path, maildir: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
        (maildir / sub).chmod(0o777)
    maildir.chmod(0o777)
    # getmail refuses to deliver as root; under root (containers) it delivers as nobody.
    as_user = "user = nobody\n" if os.geteuid() == 0 else ""
    rc = home / "getmailrc"
    rc.write_text(
        f"""[retriever]
type = SimpleIMAPSSLRetriever
server = 127.0.0.1
port = {server.ports["imaps"]}
username = {USER}
password = secret
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{as_user}
[options]
read_all = false
delete = false
"""
    )
    command = [GETMAIL or "getmail", "--getmaildir", str(home), "--rcfile", str(rc)]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert len(list((maildir / "new").glob("*"))) == 2
    # The second run fetches only what is new.
    deliver(server, 2)
    time.sleep(0.1)
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert len(list((maildir / "new").glob("*"))) == 3
