"""What the server says about itself: EHLO keywords (RFC 5321 §4.1.1.1) and HELP texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pillarbox.auth.sasl import MECHANISMS


@dataclass(frozen=True, slots=True)
class Offer:
    """What this session may use, decided by listener, TLS state and config."""

    max_message_size: int
    starttls: bool
    auth: bool
    vrfy: bool
    expn: bool
    sendmail_extensions: bool
    etrn: bool = False


def ehlo_keywords(offer: Offer) -> list[str]:
    """The EHLO reply lines after the greeting line, in a stable order."""
    keywords = ["PIPELINING"]  # RFC 2920
    keywords.append(f"SIZE {offer.max_message_size}" if offer.max_message_size else "SIZE")
    keywords += ["8BITMIME", "SMTPUTF8", "CHUNKING", "BINARYMIME", "DSN"]  # 6152 6531 3030 3461
    keywords.append("ENHANCEDSTATUSCODES")  # RFC 2034
    if offer.starttls:
        keywords.append("STARTTLS")  # RFC 3207
    if offer.auth:
        keywords.append("AUTH " + " ".join(MECHANISMS))  # RFC 4954
    if offer.vrfy:
        keywords.append("VRFY")
    if offer.expn:
        keywords.append("EXPN")
    if offer.etrn:
        keywords.append("ETRN")  # RFC 1985
    if offer.sendmail_extensions:
        keywords += ["VERB", "ONEX"]
    keywords.append("HELP")
    return keywords


# RFC 5321 §4.1.1.8: HELP lists the commands; HELP <topic> explains one.
HELP_TOPICS: Final[dict[str, str]] = {
    "HELO": "HELO <hostname> - introduce yourself (plain SMTP)",
    "EHLO": "EHLO <hostname> - introduce yourself and list the service extensions",
    "MAIL": "MAIL FROM:<sender> [SIZE=n] [BODY=7BIT|8BITMIME|BINARYMIME] [RET=FULL|HDRS] "
    "[ENVID=id] [SMTPUTF8] [AUTH=addr] - start a mail transaction",
    "RCPT": "RCPT TO:<recipient> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=type;addr] "
    "- add a recipient",
    "DATA": "DATA - send the message, ended by a line holding a single dot",
    "BDAT": "BDAT <size> [LAST] - send the next <size> octets of the message (RFC 3030)",
    "RSET": "RSET - abort the current mail transaction",
    "NOOP": "NOOP - do nothing",
    "QUIT": "QUIT - close the connection",
    "HELP": "HELP [command] - list the commands or describe one",
    "VRFY": "VRFY <user> - verify a local user (when enabled)",
    "EXPN": "EXPN <list> - expand a mailing list (when enabled)",
    "STARTTLS": "STARTTLS - start TLS on this connection (RFC 3207)",
    "AUTH": "AUTH <mechanism> [initial-response] - authenticate (PLAIN, LOGIN)",
    "ETRN": "ETRN <domain> | @<domain> - start delivery of mail held for a domain (RFC 1985)",
    "VERB": "VERB - verbose mode: report each recipient's delivery (when enabled)",
    "ONEX": "ONEX - allow only one mail transaction in this session (when enabled)",
}


def help_lines(offer: Offer) -> tuple[str, ...]:
    commands = [
        name
        for name in HELP_TOPICS
        if (name != "VRFY" or offer.vrfy)
        and (name != "EXPN" or offer.expn)
        and (name != "STARTTLS" or offer.starttls)
        and (name != "AUTH" or offer.auth)
        and (name != "ETRN" or offer.etrn)
        and (name not in ("VERB", "ONEX") or offer.sendmail_extensions)
    ]
    return ("Commands:", " ".join(commands), "Send HELP <command> for details", "End of HELP")
