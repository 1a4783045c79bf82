"""Log output of the workbench's processes on stderr: text lines by default, or one JSON object
per line (time, level, logger, message, and exception when there is one) with `--log-format json`
or WORKBENCH_LOG_FORMAT=json, which the worker and web app that `workbench up` starts inherit."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

ENV_LOG_FORMAT = "WORKBENCH_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("apscheduler", "httpx", "alembic")  # INFO on every job run, request and migration step: warnings only


def configure(log_format: str) -> None:
    """Send INFO and above to stderr in ``log_format`` (text or json), unless logging is set up already."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def json_formatter() -> logging.Formatter:
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"})
