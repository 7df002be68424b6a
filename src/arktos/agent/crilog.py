"""The CRI log format (Podman's `k8s-file` driver): one record per line,
`<RFC 3339 time> <stdout|stderr> <P|F> <content>\\n`. `F` records end a line of output, `P`
(partial) records continue into the next record. Decoding gives back the container's raw
output. No I/O.
"""

from __future__ import annotations


def record_output(record: bytes) -> bytes:
    """The raw output of one record (without its terminating newline): the content, plus a
    newline for an `F` record. A line that is not a record is returned as a line."""
    parts = record.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"P", b"F"):
        return record + b"\n"
    content = parts[3] if len(parts) == 4 else b""
    return content if parts[2] == b"P" else content + b"\n"


class CriLogDecoder:
    """Decodes a log file fed in chunks: `feed` returns the output of the records completed
    so far; an unterminated record waits for the rest."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        complete, sep, self._pending = data.rpartition(b"\n")
        if not sep:  # no record completed: all of it is pending
            return b""
        return b"".join(record_output(r) for r in complete.split(b"\n"))


def decode(data: bytes) -> bytes:
    """The raw output of a whole log file (a final unterminated record is dropped)."""
    return CriLogDecoder().feed(data)


def tail(output: bytes, lines: int | None) -> bytes:
    """The last `lines` lines of `output` (all if None; a final line without a newline
    counts)."""
    if lines is None:
        return output
    if lines <= 0:
        return b""
    kept = output.splitlines(keepends=True)[-lines:]
    return b"".join(kept)
