"""The interop matrix's processes (matrix.py): free ports, children in their
own process groups with output kept in files, commands run to completion, and
the cleanup an interrupted run needs.
"""
import os
import re
import signal
import socket
import subprocess
import time

def free_port():
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def udp_bound(port):
    """Whether some socket listens on UDP `port` (any address): a relay is
    ready once it is bound, whatever it prints."""
    for f in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(f) as fh:
                rows = fh.readlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].endswith(f":{port:04X}") for row in rows if len(row.split()) > 1):
            return True
    return False


# Every child still running, so that an interrupted run (Ctrl-C, SIGTERM)
# leaves no relay or publisher behind: each has its own process group, which
# a signal to the harness does not reach.
LIVE = set()
# Process groups of commands `run` is waiting on.
GROUPS = set()
STOPPING = False


def stop_all(signum, _frame):
    """Kills every child and leaves at once: the pool's workers would
    otherwise go on through the queued cells, starting new children."""
    global STOPPING
    STOPPING = True
    for proc in list(LIVE):
        proc.stop()
    for pgid in list(GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(128 + signum)


class Proc:
    """A child process in its own process group, output kept in files."""

    def __init__(self, name, cmd, logdir, env=None, stdin=subprocess.DEVNULL):
        if STOPPING:
            raise RuntimeError("the run is being stopped")
        self.name = name
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.err"
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        e = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "info"))
        e.update(env or {})
        self.p = subprocess.Popen([str(c) for c in cmd], stdout=self.out, stderr=self.err, stdin=stdin,
                                  env=e, start_new_session=True)
        LIVE.add(self)

    def stdout(self):
        self.out.flush()
        return self.out_path.read_text(errors="replace")

    def stderr_tail(self, n=4):
        """The end of what it printed on stderr: a Python traceback's last
        line (the exception), else the last `n` lines."""
        self.err.flush()
        lines = [strip_ansi(l) for l in self.err_path.read_text(errors="replace").splitlines() if l.strip()]
        if any(l.startswith("Traceback") for l in lines):
            return lines[-1]
        return " | ".join(lines[-n:])

    def wait_line(self, text, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.stdout():
                return True
            if self.p.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        LIVE.discard(self)
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.out.close()
        self.err.close()


def strip_ansi(s):
    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def run(cmd, timeout, env=None):
    """Runs a command to completion (killed after `timeout` s): (rc, stdout, stderr)."""
    e = dict(os.environ, NO_COLOR="1")
    e.update(env or {})
    if STOPPING:
        raise RuntimeError("the run is being stopped")
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=e, start_new_session=True)
    GROUPS.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        GROUPS.discard(p.pid)
