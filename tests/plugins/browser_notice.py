"""Say loudly, at the end of a run, when the browser suite (tests/test_browser.py) was skipped.

A skipped test is one line among hundreds; a book nobody opened in a browser is worth a banner.
Loaded with ``-p tests.plugins.browser_notice`` (see the Makefile).
"""
from __future__ import annotations

NOT_RUN = "BROWSER SUITE NOT RUN"


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NOT_RUN in _reason(r)]
    if not skipped:
        return
    reason = _reason(skipped[0]).split(NOT_RUN, 1)[1].lstrip(": ")
    tw = terminalreporter
    tw.write_sep("!", f"{NOT_RUN} ({len(skipped)} tests skipped)", red=True, bold=True)
    tw.write_line(f"The built book was not opened in a browser: {reason}.", red=True, bold=True)
    tw.write_line("Install Chromium (apt-get install chromium) to run it; CI sets REQUIRE_BROWSER=1 and fails.",
                  red=True, bold=True)
