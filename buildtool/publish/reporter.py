"""Publish's progress lines and its log: stdout for tables, stderr under --format json, every line masked."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from ..edges.registry import Credentials, mask


class Reporter:
    """Progress lines (stdout for tables, stderr under --format json) and the publish log; all masked."""

    def __init__(self, output_format: str, out: TextIO, log: Path | None, creds: Credentials | None) -> None:
        self.stream = sys.stderr if output_format == "json" else out
        self.log_path = log
        self.creds = creds
        self._log: TextIO | None = None

    def open_log(self) -> None:
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", encoding="utf-8")

    def say(self, text: str) -> None:
        text = mask(text, self.creds)
        print(text, file=self.stream, flush=True)
        self.log(text)

    def log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(time.strftime("%H:%M:%S ") + mask(text, self.creds) + "\n")
            self._log.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
