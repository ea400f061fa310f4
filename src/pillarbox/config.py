"""Settings: built-in defaults, overridden by a TOML file (DESIGN.md "Operator interface").

Every key has a default so that `pillarbox serve` runs with no file at all. A bad file or a
bad value raises `ConfigError` naming the key; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

CONFIG_ENV: Final = "PILLARBOX_CONFIG"
DEFAULT_CONFIG_FILE: Final = "pillarbox.toml"

# RFC 5321 §4.5.3.1.7 sets no maximum; 35 MiB matches what big providers accept.
DEFAULT_MAX_MESSAGE_SIZE: Final = 36_700_160
# RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
DEFAULT_MAX_RECIPIENTS: Final = 100
# smtp.processes: more than this many worker processes only contend for the write lock.
MAX_SMTP_PROCESSES: Final = 64

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A setting is missing, mistyped or out of range. The message names the key."""


def parse_duration(text: str, key: str) -> float:
    """'5m' -> 300.0 seconds; plain numbers are seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"{key}: {text!r} is not a duration like '30s', '5m', '4h' or '5d'")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str, key: str) -> ListenAddress:
    """'127.0.0.1:2525' or '[::1]:2525' -> ListenAddress."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: {text!r} is not host:port")
    return ListenAddress(host, int(port))


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: str = "sqlite"
    dsn: str = ""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    listen: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 2525),)
    submission: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 2587),)
    submissions: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 2465),)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    vrfy: bool = False
    expn: bool = False
    relay_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    bare_newline: str = "reject"  # or "normalize" (Postfix 3.9's choice)
    sendmail_extensions: bool = False  # VERB and ONEX
    max_connections_per_ip: int = 20
    max_connections: int = 1000
    max_commands: int = 1000  # between accepted messages, then 421
    max_errors: int = 20  # per session, then 421
    # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
    command_timeout: float = 300.0
    # RFC 5321 §4.5.3.2.6: ... and at least 3 minutes for each block of DATA.
    data_timeout: float = 180.0
    max_received_headers: int = 50
    # Processes accepting SMTP: 1 = the main process; more = worker processes sharing the
    # SMTP sockets, each with its own event loop and store writer (one Python process
    # uses about one core). Connection limits apply per process.
    processes: int = 1


@dataclass(frozen=True, slots=True)
class Pop3Config:
    listen: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 1110),)
    listen_tls: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 1995),)
    # RFC 1939 §3: the autologout timer is at least 10 minutes.
    timeout: float = 600.0
    login_delay: int = 0  # RFC 2449 §6.5: minimum seconds between logins of one account
    expire: int | None = None  # RFC 2449 §6.7: retention days after RETR; None = NEVER
    max_connections_per_ip: int = 20
    max_connections: int = 1000
    max_errors: int = 20  # refused commands per session, then -ERR and close


@dataclass(frozen=True, slots=True)
class ImapConfig:
    listen: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 1143),)
    listen_tls: tuple[ListenAddress, ...] = (ListenAddress("127.0.0.1", 1993),)
    # IDLE keeps one connection per client device open for hours, so the bounds are far
    # above SMTP's (10,000 idle clients is a goal of bench/imap_bench.py).
    max_connections: int = 20_000
    max_connections_per_ip: int = 1_000


@dataclass(frozen=True, slots=True)
class TlsConfig:
    certificate: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    allow_plaintext_on_loopback: bool = True
    failure_delay: float = 1.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    smarthost: str = ""
    dns: tuple[str, ...] = ()
    mx_port: int = 25
    retry: tuple[float, ...] = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
    delay_warning: float = 4 * 3600.0
    max_lifetime: float = 5 * 86400.0
    hold_domains: tuple[str, ...] = ()
    smarthost_username: str = ""  # AUTH to the smarthost (only over TLS, or on loopback)
    smarthost_password_file: str = ""  # file holding the password (kept out of `check`)


@dataclass(frozen=True, slots=True)
class Config:
    hostname: str = field(default_factory=socket.getfqdn)
    data_dir: Path = Path("pillarbox-data")
    # RFC 5321 §4.5.1: postmaster@ every local domain must be deliverable. Mail for it goes
    # to an alias or account named postmaster if there is one, else to this address.
    postmaster: str = ""
    store: StoreConfig = field(default_factory=StoreConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    pop3: Pop3Config = field(default_factory=Pop3Config)
    imap: ImapConfig = field(default_factory=ImapConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    source: str = "built-in defaults"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "pillarbox.sqlite3"


# -- converting TOML values ----------------------------------------------------------------

Converter = Callable[[Any, str], Any]


def _expect(kind: type | tuple[type, ...], name: str) -> Converter:
    def convert(value: Any, key: str) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{key}: expected {name}, got a boolean")
        if not isinstance(value, kind):
            raise ConfigError(f"{key}: expected {name}, got {type(value).__name__}")
        return value

    return convert


def _positive_int(value: Any, key: str) -> int:
    number: int = _expect(int, "an integer")(value, key)
    if number < 0:
        raise ConfigError(f"{key}: must not be negative")
    return number


def _list_of(item: Converter) -> Converter:
    def convert(value: Any, key: str) -> tuple[Any, ...]:
        items = _expect(list, "a list")(value, key)
        return tuple(item(entry, f"{key}[{index}]") for index, entry in enumerate(items))

    return convert


def _listen(value: Any, key: str) -> ListenAddress:
    return parse_listen(_expect(str, "a string")(value, key), key)


def _network(value: Any, key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = _expect(str, "a string")(value, key)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not an IP network (CIDR)") from None


def _duration(value: Any, key: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(_expect(str, "a duration string")(value, key), key)


def _choice(*options: str) -> Converter:
    def convert(value: Any, key: str) -> str:
        text: str = _expect(str, "a string")(value, key)
        if text not in options:
            raise ConfigError(f"{key}: must be one of {', '.join(options)}")
        return text

    return convert


def _expire(value: Any, key: str) -> int | None:
    """RFC 2449 §6.7 EXPIRE: a number of days, or "never"."""
    if isinstance(value, str) and value.lower() == "never":
        return None
    if isinstance(value, str):
        raise ConfigError(f'{key}: expected a number of days or "never"')
    return _positive_int(value, key)


_STR = _expect(str, "a string")
_BOOL = _expect(bool, "true or false")
_NUMBER = _duration

SECTIONS: Final[dict[str, tuple[type, dict[str, Converter]]]] = {
    "store": (StoreConfig, {"backend": _choice("sqlite", "postgresql"), "dsn": _STR}),
    "smtp": (
        SmtpConfig,
        {
            "listen": _list_of(_listen),
            "submission": _list_of(_listen),
            "submissions": _list_of(_listen),
            "max_message_size": _positive_int,
            "max_recipients": _positive_int,
            "vrfy": _BOOL,
            "expn": _BOOL,
            "relay_networks": _list_of(_network),
            "bare_newline": _choice("reject", "normalize"),
            "sendmail_extensions": _BOOL,
            "max_connections_per_ip": _positive_int,
            "max_connections": _positive_int,
            "max_commands": _positive_int,
            "max_errors": _positive_int,
            "command_timeout": _NUMBER,
            "data_timeout": _NUMBER,
            "max_received_headers": _positive_int,
            "processes": _positive_int,
        },
    ),
    "pop3": (
        Pop3Config,
        {
            "listen": _list_of(_listen),
            "listen_tls": _list_of(_listen),
            "timeout": _NUMBER,
            "login_delay": _positive_int,
            "expire": _expire,
            "max_connections_per_ip": _positive_int,
            "max_connections": _positive_int,
            "max_errors": _positive_int,
        },
    ),
    "imap": (
        ImapConfig,
        {
            "listen": _list_of(_listen),
            "listen_tls": _list_of(_listen),
            "max_connections": _positive_int,
            "max_connections_per_ip": _positive_int,
        },
    ),
    "tls": (TlsConfig, {"certificate": _STR, "key": _STR}),
    "auth": (AuthConfig, {"allow_plaintext_on_loopback": _BOOL, "failure_delay": _NUMBER}),
    "delivery": (
        DeliveryConfig,
        {
            "smarthost": _STR,
            "dns": _list_of(_STR),
            "mx_port": _positive_int,
            "retry": _list_of(_duration),
            "delay_warning": _duration,
            "max_lifetime": _duration,
            "hold_domains": _list_of(_STR),
            "smarthost_username": _STR,
            "smarthost_password_file": _STR,
        },
    ),
}


def _section(name: str, raw: Any) -> Any:
    cls, converters = SECTIONS[name]
    table: Mapping[str, Any] = _expect(dict, "a table")(raw, name)
    values = {}
    for key, value in table.items():
        if key not in converters:
            raise ConfigError(f"{name}.{key}: unknown setting")
        values[key] = converters[key](value, f"{name}.{key}")
    return cls(**values)


def from_mapping(raw: Mapping[str, Any], source: str = "mapping") -> Config:
    """Build a Config from parsed TOML, naming the first bad key in ConfigError."""
    values: dict[str, Any] = {"source": source}
    for key, value in raw.items():
        if key in SECTIONS:
            values[key] = _section(key, value)
        elif key in ("hostname", "postmaster"):
            values[key] = _STR(value, key)
        elif key == "data_dir":
            values[key] = Path(_STR(value, key))
        else:
            raise ConfigError(f"{key}: unknown setting")
    config = Config(**values)
    _check(config)
    return config


def _check(config: Config) -> None:
    if not config.hostname or any(c.isspace() for c in config.hostname):
        raise ConfigError("hostname: must be a non-empty domain name")
    if config.postmaster and "@" not in config.postmaster:
        raise ConfigError("postmaster: must be a full address (user@domain)")
    if bool(config.tls.certificate) != bool(config.tls.key):
        raise ConfigError("tls.key: certificate and key must be set together")
    if not 1 <= config.smtp.processes <= MAX_SMTP_PROCESSES:
        raise ConfigError(f"smtp.processes: must be from 1 to {MAX_SMTP_PROCESSES}")
    if config.store.backend == "postgresql":
        raise ConfigError("store.backend: postgresql is not available in this version")


def load(path: str | None) -> Config:
    """Read the config named by --config, $PILLARBOX_CONFIG or ./pillarbox.toml."""
    chosen = path or os.environ.get(CONFIG_ENV)
    if not chosen:
        if not Path(DEFAULT_CONFIG_FILE).exists():
            return Config()
        chosen = DEFAULT_CONFIG_FILE
    try:
        with open(chosen, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"--config: cannot read {chosen}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config: {chosen} is not valid TOML: {error}") from None
    return from_mapping(raw, source=str(chosen))


def describe(config: Config) -> str:
    """The effective settings as TOML-like text, for `pillarbox check`."""
    lines = [
        f"# from {config.source}",
        f"hostname = {config.hostname!r}",
        f"data_dir = {str(config.data_dir)!r}",
        f"postmaster = {config.postmaster!r}",
    ]
    for name in SECTIONS:
        lines.append(f"[{name}]")
        section = getattr(config, name)
        for item in fields(section):
            lines.append(f"{item.name} = {_show(getattr(section, item.name))}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, ListenAddress | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return repr(str(value))
    return str(value)
