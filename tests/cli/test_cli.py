"""The operator interface, run as a real subprocess (DESIGN.md "Operator interface")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(tmp_path: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pillarbox.toml"
    if not config.exists():
        config.write_text(f'hostname = "mx.test"\ndata_dir = "{tmp_path / "data"}"\n')
    return subprocess.run(
        [sys.executable, "-m", "pillarbox.cli", "--config", str(config), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_domain_user_alias_round_trip(tmp_path: Path) -> None:
    assert run(tmp_path, "domain", "add", "Example.ORG").returncode == 0
    assert run(tmp_path, "domain", "list").stdout.split() == ["example.org"]
    assert run(tmp_path, "domain", "list", "EXAMPLE.org").stdout.split() == ["example.org"]
    assert run(tmp_path, "domain", "list", "other.example").returncode == 1
    done = run(
        tmp_path,
        "user",
        "add",
        "jane@example.org",
        "--password-stdin",
        "--name",
        "Jane Doe",
        input="pw\n",
    )
    assert done.returncode == 0, done.stderr
    assert "jane@example.org\tJane Doe" in run(tmp_path, "user", "list").stdout
    boxes = run(tmp_path, "mailbox", "list", "jane@example.org").stdout
    names = [line.split("\t")[0] for line in boxes.splitlines()]
    assert set(names) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    assert (
        run(
            tmp_path,
            "alias",
            "add",
            "team@example.org",
            "jane@example.org",
            "bob@elsewhere.example",
        ).returncode
        == 0
    )
    assert (
        "team@example.org: jane@example.org, bob@elsewhere.example"
        in run(tmp_path, "alias", "list").stdout
    )
    assert run(tmp_path, "user", "remove", "jane@example.org").returncode == 0
    assert "jane@example.org" not in run(tmp_path, "user", "list").stdout


def test_user_in_unknown_domain_fails(tmp_path: Path) -> None:
    done = run(tmp_path, "user", "add", "x@nowhere.example", "--password-stdin", input="pw\n")
    assert done.returncode == 1
    assert done.stderr.startswith("pillarbox: ")


def test_usage_and_config_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "domain", "frobnicate")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nmax_recipients = -1\n")
    done = subprocess.run(
        [sys.executable, "-m", "pillarbox.cli", "--config", str(bad), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "pillarbox: smtp.max_recipients: must not be negative"


def test_password_is_required_without_a_terminal(tmp_path: Path) -> None:
    run(tmp_path, "domain", "add", "example.org")
    done = run(tmp_path, "user", "add", "jane@example.org", input="")
    assert done.returncode == 2
    assert "--password-stdin" in done.stderr


def test_alias_import_reads_aliases5_with_include(tmp_path: Path) -> None:
    run(tmp_path, "domain", "add", "example.org")
    members = tmp_path / "staff.list"
    members.write_text("jane\nbob@elsewhere.example\n")
    aliases = tmp_path / "aliases"
    aliases.write_text(
        "# system aliases\npostmaster: root\nstaff: :include:" + str(members) + "\n"
        "admin: jane,\n  bob@elsewhere.example\n"
    )
    done = run(tmp_path, "alias", "import", str(aliases))
    assert done.returncode == 0, done.stderr
    listing = run(tmp_path, "alias", "list").stdout
    assert "admin: jane, bob@elsewhere.example" in listing
    assert "staff: :include:" in listing


def test_alias_import_bad_line_exits_2(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text("good: jane\nthis line has no colon\n")
    done = run(tmp_path, "alias", "import", str(aliases))
    assert done.returncode == 2
    assert ":2:" in done.stderr or "line 2" in done.stderr


def test_mailbox_import_mbox_and_maildir_then_export(tmp_path: Path) -> None:
    run(tmp_path, "domain", "add", "example.org")
    run(tmp_path, "user", "add", "jane@example.org", "--password-stdin", input="pw\n")
    mbox = tmp_path / "old.mbox"
    mbox.write_bytes(
        b"From bob@example.net Mon Jan  1 10:00:00 2024\nSubject: one\nStatus: RO\n\n"
        b"body one\n>From the start\n\n"
        b"From bob@example.net Tue Jan  2 10:00:00 2024\nSubject: two\n\nbody two\n"
    )
    assert run(tmp_path, "mailbox", "import", "jane@example.org", str(mbox)).returncode == 0
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1700000000.1.host:2,FS").write_bytes(b"Subject: three\n\nbody three\n")
    done = run(tmp_path, "mailbox", "import", "jane@example.org", str(maildir), "--mailbox", "Old")
    assert done.returncode == 0, done.stderr
    boxes = run(tmp_path, "mailbox", "list", "jane@example.org").stdout
    assert "INBOX\t2 messages" in boxes and "Old\t1 messages" in boxes
    exported = run(tmp_path, "mailbox", "export", "jane@example.org").stdout
    assert exported.count("\nFrom ") + exported.startswith("From ") == 2
    assert ">From the start" in exported and "Status: R" in exported
    old = run(tmp_path, "mailbox", "export", "jane@example.org", "--mailbox", "Old").stdout
    assert "Status: RF" in old and "body three" in old


def test_mailbox_import_rejects_non_mailbox(tmp_path: Path) -> None:
    run(tmp_path, "domain", "add", "example.org")
    run(tmp_path, "user", "add", "jane@example.org", "--password-stdin", input="pw\n")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    done = run(tmp_path, "mailbox", "import", "jane@example.org", str(junk))
    assert done.returncode == 2


@pytest.mark.parametrize("command", ["serve", "check", "domain", "user", "alias", "mailbox"])
def test_help_texts(tmp_path: Path, command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pillarbox.cli", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "usage: pillarbox" in done.stdout
