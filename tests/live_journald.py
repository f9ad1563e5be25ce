"""Run inside a private mount namespace (``unshare -m``): a real, live journald, then log-counter.

tmpfs over /run and /var/log/journal keeps the machine's own journal untouched. journald starts
standalone, entries are sent through its native socket with systemd-python, and log-counter
counts the *system* journal (no --log-path): once with a quiet journal, once while a writer keeps
logging newer entries. Prints a JSON object with what the test asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def main(log_counter: str) -> int:
    for target in ("/run", "/var/log/journal"):
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", target], check=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    journald = subprocess.Popen(
        ["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            if os.path.exists("/run/systemd/journal/socket"):
                break
            time.sleep(0.025)
        from systemd import journal

        for _ in range(3):
            journal.send("Started Kubernetes kubelet.", SYSLOG_IDENTIFIER="kubelet")
        journal.send("Stopping Kubernetes kubelet...", SYSLOG_IDENTIFIER="kubelet")
        journal.send("Started Kubernetes kubelet.", SYSLOG_IDENTIFIER="other")
        time.sleep(0.3)  # let journald write them before counting starts
        argv = [
            log_counter,
            "--journald-source=kubelet",
            "--lookback=1m",
            "--pattern=Started Kubernetes kubelet.",
            "--revert-pattern=Stopping Kubernetes kubelet...",
        ]
        quiet = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        stop = threading.Event()

        def keep_logging() -> None:
            while not stop.is_set():
                journal.send("Started Kubernetes kubelet.", SYSLOG_IDENTIFIER="kubelet")
                time.sleep(0.001)

        writer = threading.Thread(target=keep_logging, daemon=True)
        writer.start()
        time.sleep(0.2)
        started = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        elapsed = time.monotonic() - started
        stop.set()
        writer.join()
        print(
            json.dumps(
                {
                    "quiet": [quiet.returncode, quiet.stdout, quiet.stderr],
                    "returncode": proc.returncode,
                    "stdout": proc.stdout,
                    "stderr": proc.stderr,
                    "elapsed": elapsed,
                    "files": os.listdir("/run/log/journal"),
                }
            )
        )
    finally:
        journald.terminate()
        journald.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
