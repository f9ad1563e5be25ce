"""Run one command line through NPD's own binary and through ours, and compare what NPD sees.

NPD's custom plugin monitor sees two things of a plugin run: the exit code and stdout (trimmed,
cut to ``max_output_length``). So a case matches when the exit codes are equal and our stdout is
exactly what NPD's binary printed, made one line and cut as we cut it (80 bytes for a usage
error, 4 KiB for a result: :func:`healthcheck.sdk.text.one_line`).

Where NPD's binary prints a flag error, it prints pflag's usage and the error on stderr and
nothing on stdout; ours prints the same error line on stdout, so that the condition says why
(README, deliberate differences). The error line is therefore taken from NPD's stderr, after
the usage text, and compared with our stdout.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from healthcheck.sdk.text import one_line

USAGE_END = "number for the log level verbosity\n"  # the last line of pflag's usage (-v)
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@dataclass
class Case:
    """One command line to run through both binaries.

    ``npd_differs`` documents a deliberate difference (the README lists it): the case then
    pins what each side does, ``(exit code, stdout line)`` for NPD and for us.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    npd_differs: tuple | None = None  # ((npd_rc, npd_line), (our_rc, our_line))


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def message(self) -> tuple[str, bool]:
        """What NPD would show as the message, and whether it is a flag (usage) error."""
        if self.returncode == 2 and not self.stdout and USAGE_END in self.stderr:
            return self.stderr.split(USAGE_END, 1)[1].rstrip("\n"), True
        return self.stdout, False


def run(binary: str, argv: list[str], env: dict[str, str], timeout: float = 30.0) -> Run:
    full = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    full.update(env)
    proc = subprocess.run(
        [binary, *argv],
        capture_output=True,
        env=full,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def expected_line(npd: Run, ours: str) -> str:
    """NPD's message as we would print it: one line, cut at our limit for it."""
    text, _ = npd.message()
    limit = 80 if len(ours.encode()) <= 80 else 4096
    return one_line(text, limit)


def compare(case: Case, npd: Run, ours: Run) -> str | None:
    """None when NPD would see the same from both; else a one-paragraph description."""
    our_line = ours.stdout.removesuffix("\n")
    if "\n" in our_line or "Traceback" in ours.stderr:
        return f"{case.name}: our output is not one line / has a traceback: {ours!r}"
    if case.npd_differs is not None:
        (npd_rc, npd_line), (our_rc, want_ours) = case.npd_differs
        got_npd = (npd.returncode, one_line(npd.message()[0], 4096))
        if got_npd != (npd_rc, npd_line) or (ours.returncode, our_line) != (our_rc, want_ours):
            return (
                f"{case.name}: documented difference changed: NPD {got_npd}, "
                f"ours {(ours.returncode, our_line)}"
            )
        return None
    want = expected_line(npd, our_line)
    if npd.returncode != ours.returncode or our_line != want:
        return (
            f"{case.name} {case.argv!r}:\n  NPD  exit {npd.returncode}: {want!r}\n"
            f"  ours exit {ours.returncode}: {our_line!r}"
        )
    return None


def run_cases(npd_binary: str, our_binary: str, cases: list[Case], workers: int = 6) -> list[str]:
    """Run every case through both binaries, several at once; the mismatches, described."""

    def one(case: Case) -> str | None:
        npd = run(npd_binary, case.argv, case.env)
        ours = run(our_binary, case.argv, case.env)
        return compare(case, npd, ours)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, cases))
    # A case that differed is run once more on its own before it counts: on a loaded 2-core
    # machine NPD's binary has been seen to fail a loopback probe that it passes when run alone
    # (a case that differs for a real reason differs both times).
    return [
        again
        for case, first in zip(cases, results, strict=True)
        if first is not None and (again := one(case)) is not None
    ]


# --------------------------------------------------------------------- a raw loopback HTTP server


class RawHttpServer:
    """A loopback HTTP server whose replies are raw bytes, chosen by request path.

    ``routes`` maps a path to the bytes to send (``{port}`` is replaced by the server's port),
    or to a callable returning them; after sending, the connection is closed. ``delay`` maps a
    path to seconds to wait before answering.
    """

    def __init__(self, routes: dict, delay: dict | None = None) -> None:
        self.routes = routes
        self.delay = delay or {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.paths: list[str] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
            except OSError:
                return
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            path = target.decode("latin-1").split("?", 1)[0]
            self.paths.append(path)
            time.sleep(self.delay.get(path, 0))
            reply = self.routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            if callable(reply):
                reply = reply()
            with_port = reply.replace(b"{port}", str(self.port).encode())
            try:
                conn.sendall(with_port)
                conn.shutdown(socket.SHUT_WR)
                time.sleep(0.05)
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def reply(status: str, body: bytes = b"ok", headers: str = "") -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n"
    return head.encode() + body


def redirect(status: str, location: str) -> bytes:
    return reply(status, b"", f"Location: {location}\r\n")
