"""A child process started without the ``subprocess`` module.

safe-pip starts uv's plan and the interpreter probe in the first milliseconds of
a guarded command; importing ``subprocess`` (with ``signal``, ``threading``,
``selectors``, ``locale`` and ``enum``) would cost more than either spawn, so
these children are started with ``os.posix_spawn`` and their pipes read with
``select.poll``.  The interface is the part of ``subprocess.Popen`` safe-pip
uses: ``communicate``, ``poll``, ``wait``, ``kill``, ``send_signal``,
``returncode``.

The child inherits the working directory and the process group (Ctrl-C reaches
it as it reaches safe-pip); SIGPIPE and SIGXFSZ, which Python ignores, are back
to their default in the child, as ``subprocess`` does.  It gets no descriptor but 0, 1
and 2, as with ``subprocess``'s ``close_fds``: Python opens its own files
close-on-exec, and what safe-pip inherited open from its parent is closed in
the child (found in ``/proc/self/fd``; where there is none, it is inherited).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_CHUNK = 65536
#: SIGPIPE and SIGXFSZ (the same numbers on Linux, macOS and the BSDs; ``signal`` itself
#: costs milliseconds to import)
_DEFAULT_IN_CHILD = (13, 25)


def _inherited_descriptors() -> list[int]:
    """This process's open descriptors above 2 that a child would inherit."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return found


class ChildTimeout(Exception):
    """``communicate`` ran out of time; the child is still running."""


class Child:
    """A running child: stdout and stderr to pipes when ``capture`` (read by
    ``communicate``), else safe-pip's own; stdin safe-pip's own, or /dev/null when not
    ``stdin``."""

    def __init__(
        self,
        argv: Sequence[str],
        environ: Mapping[str, str],
        *,
        capture: bool,
        stdin: bool = True,
    ) -> None:
        self.args = list(argv)
        self.returncode: int | None = None
        self._stdout: list[bytes] = []
        self._stderr: list[bytes] = []
        #: the read ends still open, and where their bytes go
        self._pipes: dict[int, list[bytes]] = {}
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_descriptors()
        ]
        if not stdin:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        ends: list[int] = []
        try:
            if capture:
                for fd, buffer in ((1, self._stdout), (2, self._stderr)):
                    read_end, write_end = os.pipe()
                    ends += [read_end, write_end]
                    self._pipes[read_end] = buffer
                    actions.append((os.POSIX_SPAWN_DUP2, write_end, fd))
            self.pid = os.posix_spawn(
                self.args[0],
                self.args,
                dict(environ),
                file_actions=actions,
                setsigdef=_DEFAULT_IN_CHILD,
            )
        except BaseException:
            for fd in ends:
                os.close(fd)
            raise
        for fd in ends[1::2]:
            os.close(fd)  # the write ends are the child's

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self) -> int:
        code = self._reap(0)
        assert code is not None
        return code

    def _reap(self, options: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, options)
            except ChildProcessError:
                # reaped already: a Ctrl-C landed between waitpid and keeping its answer;
                # its status is lost (subprocess says 0 then, and so does this)
                self.returncode = 0
                return 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signal: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal)

    def kill(self) -> None:
        self.send_signal(9)  # SIGKILL, the same number on every POSIX system

    def discard(self) -> None:
        """End a child whose answer is not wanted (if it still runs), and reap it."""
        if self.poll() is None:
            self.kill()
        self.communicate()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """(stdout, stderr) once the child has closed both and ended; raises
        ``ChildTimeout`` after ``timeout`` seconds (what was read is kept, and a later
        call goes on from there)."""
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        for fd in self._pipes:
            poller.register(fd, select.POLLIN)
        while self._pipes:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = poller.poll(wait_ms)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                raise ChildTimeout(f"{self.args[0]} did not end within {timeout} s")
            for fd, _ in ready:
                data = os.read(fd, _CHUNK)
                if data:
                    self._pipes[fd].append(data)
                    continue
                poller.unregister(fd)
                os.close(fd)
                del self._pipes[fd]
        # a child that closed its output may still run: the deadline holds for its end too
        while deadline is not None and self.poll() is None:
            if time.monotonic() >= deadline:
                raise ChildTimeout(f"{self.args[0]} did not end within {timeout} s")
            time.sleep(0.005)
        self.wait()
        return (
            b"".join(self._stdout).decode("utf-8", "replace"),
            b"".join(self._stderr).decode("utf-8", "replace"),
        )


def exit_code(code: int) -> int:
    """A child's exit code as a shell gives it: 128 + N for a death by signal N."""
    return 128 - code if code < 0 else code


__all__ = ["Child", "ChildTimeout", "exit_code"]
