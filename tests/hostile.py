"""Hostile input for the tests: misbehaving servers on 127.0.0.1 for probes (a raw TCP server that
hands each connection to a handler, and handlers that hang, trickle, flood, cut off or talk
nonsense), hostile command arguments, and hostile policy text and mutations of policy files."""

from __future__ import annotations

import re
import socket
import threading

from hypothesis import strategies as st


class RawServer:
    """A TCP server on 127.0.0.1 handing each connection, in its own thread, to
    ``handle(conn, stop)``; ``stop`` is set when the test ends. With ``read_request`` the
    server first reads what the client sent (an HTTP request fits in one read), as an HTTP
    server would, so the handler only answers."""

    def __init__(self, handle, read_request: bool = False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # accept() wakes up to see ``stop``
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.handle, self.read_request, self.stop = handle, read_request, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                if self.read_request:
                    conn.recv(65536)
                self.handle(conn, self.stop)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.sock.close()


def never_answer(conn, stop):
    stop.wait(5)


def one_byte_per_tick(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
        conn.sendall(bytes([byte]))
        if stop.wait(0.2):
            return


def endless_body(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
    chunk = b"y" * 65536
    for _ in range(32768):  # 2 GiB at most; the probe stops reading long before
        if stop.is_set():
            return
        conn.sendall(chunk)


def close_mid_response(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")


def garbage(conn, stop):
    conn.sendall(b"\x00\x01 this is not http \r\n\r\n")


# Figures of the hostile-input suite (tests/integration/test_hostile_input.py), printed at the end of the run
FIGURES: dict[str, dict] = {}

# Text a shell can hand a command: shell and format metacharacters, control characters and
# escapes, undecodable bytes (lone surrogates, as Python gives them), very long and huge numbers.
HOSTILE_ARGUMENTS = [
    "", " ", "-", "--", "-1", "0", "99999999999999999999", "9" * 5000, "1e400", "nan", "inf", "{}", "{0}", "{x:.1f}",
    "%s%n", "${HOME}", "$(id)", "`id`", "'; DROP TABLE incident;--", "a=b", "a=", "=b", "a!=b", "a=~(", "a=~" + "(a*)*" * 8,
    "service=shop", "\n", "line\nbreak", "\r\n", "\x1b[31mred", "\u2028", "\ufeff", "\udcff", "caf\udce9", "é" * 300,
    "x" * 100_000, "../../../etc/passwd", "/dev/zero", "/proc/self/mem", "/", ".", "~", "1s", "0s", "-5m",
    "99999999999d", "2026-13-45", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00", "Mars/Olympus",
    "mon,tue,xyz", "25:61", "pending", "approved",
]


# Values known to have broken a check, or close to what does: huge, infinite and tiny durations,
# templates that format a string as a number, recursive and undefined aliases, deep nesting,
# tags PyYAML refuses to build, numbers past Python's int-to-text limit, control characters.
HOSTILE_TEXT = [
    "99999999999d", "1e400", ".inf", "-.inf", ".nan", "0.0000001ms", "-5s", "9" * 400, "9" * 5000, "0", "-1", "~",
    "true", "{}", "[]", "[[[[[[", "'{window:.1f}'", "'{value[0]}'", "'{labels.x}'", "'{labels[nope]}'",
    "'{value.real}'", "'{}'", "'{threshold:%}'", "&a [*a]", "*nowhere", "!!python/object:os.system", "!!binary x",
    "'a\\nb'", '"\\u2028"', '"\\x1b[31m"', "'x' : y : z", "2001-12-14", "0x1F", "0o17", "1_000", "&x\n  - *x",
    "[" * 200 + "]" * 200, "'" + "x" * 300 + "'",
]


NUMBER = re.compile(r"\d+")
INTERESTING_NUMBERS = st.sampled_from(["0", "00", "-1", "99999999999", "9" * 400, "1e400", "0.0000001"]) \
    | st.integers(0, 2**70).map(str)


@st.composite
def mutations(draw, files: dict[str, str]) -> tuple[str, str]:
    """(file name, text): one of the policy ``files`` (name: text) with a few of its values or
    numbers replaced, lines dropped, repeated, cut short or shifted, or text inserted."""
    name = draw(st.sampled_from(sorted(files)))
    lines = files[name].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["value", "number", "number", "delete", "repeat", "insert", "cut", "indent"]))
        if edit == "value" and (keyed := [i for i, line in enumerate(lines) if ": " in line]):
            i = draw(st.sampled_from(keyed))
            lines[i] = lines[i].split(": ", 1)[0] + ": " + draw(st.sampled_from(HOSTILE_TEXT) | st.text(max_size=20))
        elif edit == "number" and (numbered := [i for i, line in enumerate(lines) if NUMBER.search(line)]):
            i = draw(st.sampled_from(numbered))
            found = list(NUMBER.finditer(lines[i]))
            at = draw(st.sampled_from(found))
            lines[i] = lines[i][:at.start()] + draw(INTERESTING_NUMBERS) + lines[i][at.end():]
        elif lines:
            i = draw(st.integers(0, len(lines) - 1))
            if edit == "delete":
                del lines[i]
            elif edit == "repeat":
                lines.insert(i, lines[i])
            elif edit == "insert":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + draw(st.text(max_size=10) | st.sampled_from(HOSTILE_TEXT)) + lines[i][at:]
            elif edit == "cut":
                lines = lines[:i]
            elif edit == "indent":
                lines[i] = draw(st.sampled_from(["  ", " ", "\t", ""])) + lines[i].lstrip(" ")
    return name, "\n".join(lines) + "\n"
