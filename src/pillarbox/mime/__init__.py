"""Messages as bytes: the MIME engine under IMAP, POP3, SMTP and delivery. Pure (no I/O).

Modules:

- ``parts``      one-pass parser: :func:`parts.parse` gives a tree of frozen :class:`parts.Part`
                 records with byte offsets of every header and body (RFC 2045/2046/5322/6532);
                 never raises; bounded by ``MAX_DEPTH``/``MAX_PARTS``/``MAX_HEADER_BYTES``.
- ``model``      the records :class:`Part` and :class:`EnvelopeFields` (re-exported by ``parts``).
- ``scan``       the Content-*/ENVELOPE fields a part tree needs, found in one regex pass.
- ``headers``    field splitting, unfolding, RFC 2047 encoded-words,
                 Content-Type/Disposition/Transfer-Encoding/Language with RFC defaults.
- ``params``     header text, tokens, comments, RFC 2045/2231 parameter lists (re-exported by
                 ``headers``).
- ``address``    RFC 5322 address lists (groups, routes, quoted local parts, comments,
                 UTF-8 and IDNA); used by IMAP ENVELOPE and ``sendmail -t``.
- ``imapview``   ENVELOPE, BODY and BODYSTRUCTURE bytes (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
- ``sections``   BODY[section] slices, partial, BINARY[...] and BINARY.SIZE (RFC 3516).
- ``cache``      compact serial form of a part tree for the store (parse once at delivery).
- ``text``       decoded header and body text for SEARCH and full-text indexing.
- ``encode``     base64, quoted-printable, RFC 2047 encoding, header folding.
- ``downgrade``  8BITMIME → 7bit conversion (RFC 6152 §3).
- ``dsn``        delivery status notifications (RFC 3464, RFC 6522, RFC 3461 §6).
"""
