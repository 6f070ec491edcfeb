from __future__ import annotations

import io

from feaas.runners.progressbar import ProgressReporter, render_bar
from feaas.settings import Settings


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def settings(fmt: str) -> Settings:
    return Settings(run_mode="RUN_COLLECTION", job_id="j", username="u", region="r", dynamo_table="t",
                    dynamo_streams_table="s", primary_bucket="b", log_format=fmt)


def test_render_bar_shows_fraction_counts_rate_and_eta():
    line = render_bar(done=250, total=1000, failed=3, rate=50.0, width=20)
    assert line.startswith("[#####...............]")
    assert " 25.0% 250/1000 failed 3 50.0 items/s ETA 0:15" in line


def test_bar_is_drawn_on_a_terminal_in_text_mode_only():
    tty = Tty()
    reporter = ProgressReporter(settings("text"), stream=tty)
    reporter.tick(10, 100, 0)
    reporter.close()
    assert "10/100" in tty.getvalue() and tty.getvalue().startswith("\r[")
    quiet = Tty()
    ProgressReporter(settings("json"), stream=quiet).tick(10, 100, 0)
    assert quiet.getvalue() == ""
    pipe = io.StringIO()
    ProgressReporter(settings("text"), stream=pipe).tick(10, 100, 0)
    assert pipe.getvalue() == ""
