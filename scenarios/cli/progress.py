"""A live progress line on a TTY (redrawn every half second: elapsed, runs, calls/s, failures,
current activity); otherwise plain lines: every message, and the current activity at most once
every ``QUIET_SECONDS`` (a log file stays short)."""
import shutil
import sys
import threading
import time

QUIET_SECONDS = 15


class Progress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self.text = ""
        self.counters = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ticker = None
        self._shown = None          # when the activity was last printed (not on a TTY)
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def update(self, text):
        """Show the current activity (a new line when not on a TTY)."""
        with self._lock:
            self.text = text
            if self.live:
                self._draw()
            elif self._shown is None or time.monotonic() - self._shown >= QUIET_SECONDS:
                self._shown = time.monotonic()
                print(f"[{self._elapsed():5.0f}s] {self.counters}{text}", file=self.stream,
                      flush=True)

    def stats(self, runs, calls_per_sec, failures):
        """The session's counters, shown on the live line (and nowhere else)."""
        with self._lock:
            self.counters = (f"{runs} runs | {calls_per_sec:,.0f} calls/s | "
                             f"{failures} failed | ")

    def log(self, text):
        """A permanent message above the live line."""
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
            print(text, file=self.stream, flush=True)
            if self.live:
                self._draw()

    def close(self):
        self._stop.set()
        if self._ticker:
            self._ticker.join()
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _elapsed(self):
        return time.monotonic() - self.started

    def _draw(self):
        line = f"[{self._elapsed():5.0f}s] {self.counters}{self.text}"
        self.stream.write("\r\033[K" + line[:_width() - 1])
        self.stream.flush()

    def _tick(self):
        while not self._stop.wait(0.5):
            with self._lock:
                self._draw()


def _width():
    return shutil.get_terminal_size((120, 24)).columns
