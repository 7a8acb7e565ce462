"""``suibou pipeline`` stops its job when it is stopped, whether by Ctrl-C or by a service manager's SIGTERM."""

from __future__ import annotations

import os
import signal

import pytest

from pipelines.job import _terminate_as_interrupt


def test_sigterm_inside_the_run_is_an_interrupt_that_runs_the_clean_up_and_the_old_handler_is_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cleaned_up: list[bool] = []
    with pytest.raises(KeyboardInterrupt), _terminate_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as soon as the call returns
            pytest.fail("SIGTERM did not interrupt the run")
        finally:
            cleaned_up.append(True)
    assert cleaned_up == [True]
    assert signal.getsignal(signal.SIGTERM) == before
