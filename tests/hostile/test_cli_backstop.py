"""The CLI's last resort: an unexpected exception (a steerc bug) is one line naming it and
asking for a report, exit 1 -- never a traceback (unless STEERC_TRACEBACK=1)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr

from steerc.cli import main
from steerc.commands import check


def _boom(args):
    raise ZeroDivisionError("a bug")


def test_unexpected_exception_is_an_internal_error(monkeypatch):
    monkeypatch.setattr(check, "run", _boom)
    monkeypatch.delenv("STEERC_TRACEBACK", raising=False)
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["check", "x.steer"])
    assert rc == 1
    text = err.getvalue()
    assert "steerc: internal error: ZeroDivisionError: a bug" in text and "report" in text
    assert "Traceback" not in text


def test_traceback_on_request(monkeypatch):
    monkeypatch.setattr(check, "run", _boom)
    monkeypatch.setenv("STEERC_TRACEBACK", "1")
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["check", "x.steer"]) == 1
    assert "Traceback" in err.getvalue()


def test_usage_errors_still_exit_2():
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["check", "x.steer", "--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in err.getvalue()
