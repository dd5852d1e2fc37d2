"""The collector paused while the command starts (aws_iot_mock.startup_gc).

The entry points pause it; a verb other than serve resumes it once parsed, serve once the broker
has started (freezing what the start-up built). A process whose collector was not paused by
startup_gc keeps its own settings.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_iot_mock import cli, startup_gc


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    """Each test starts with the collector enabled, no pause of startup_gc, nothing frozen."""
    gc.enable()
    startup_gc.resume()
    yield
    startup_gc.resume()
    gc.unfreeze()
    gc.enable()


def test_pause_then_resume() -> None:
    startup_gc.pause()
    assert (gc.isenabled(), startup_gc.paused()) == (False, True)

    startup_gc.resume()

    assert (gc.isenabled(), startup_gc.paused()) == (True, False)


def test_resume_leaves_a_collector_it_did_not_pause() -> None:
    # The twin: a process that disabled the collector itself keeps it disabled.
    gc.disable()
    startup_gc.pause()
    assert not startup_gc.paused()

    startup_gc.resume()

    assert not gc.isenabled()


def test_resume_can_freeze_what_was_built() -> None:
    startup_gc.pause()

    startup_gc.resume(freeze=True)

    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_a_verb_other_than_serve_resumes_the_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    startup_gc.pause()

    code = cli.main(["list-things", "--state-dir", str(tmp_path / "state")])

    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out) == {"things": []}
    assert (gc.isenabled(), startup_gc.paused()) == (True, False)


def test_serve_resumes_the_collector_once_started(tmp_path: Path) -> None:
    # serve runs here, on the main thread (its signal handlers); a thread waits for its ready
    # file, looks at the collector, then stops it with SIGINT as Ctrl-C would.
    ready = tmp_path / "ready.json"
    seen: dict[str, object] = {}
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def look_then_stop() -> None:
        done = threading.Event()
        while not ready.exists() and not done.wait(0.01):
            pass
        seen.update(enabled=gc.isenabled(), paused=startup_gc.paused())
        seen.update(frozen=gc.get_freeze_count())
        signal.pthread_kill(main_thread, signal.SIGINT)

    startup_gc.pause()
    watcher = threading.Thread(target=look_then_stop, daemon=True)
    watcher.start()
    argv = ["serve", "--port", "0", "--https-port", "0", "--alpn-port", "off"]
    dirs = ["--state-dir", str(tmp_path / "state"), "--certs-dir", str(tmp_path / "certs")]

    code = cli.main([*argv, *dirs, "--log-level", "ERROR", "--ready-file", str(ready)])

    watcher.join(timeout=30)
    assert code == 0
    assert seen["enabled"] is True
    assert seen["paused"] is False
    assert isinstance(seen["frozen"], int)
    assert seen["frozen"] > 0


def test_the_entry_point_pauses_then_the_verb_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The console script's (and python -m aws_iot_mock's) function, as the command runs it.
    paused_while_parsing: list[bool] = []
    parse = cli._resume_collector

    def look_then_resume(verb: str) -> None:
        paused_while_parsing.append(startup_gc.paused())
        parse(verb)

    monkeypatch.setattr(cli, "_resume_collector", look_then_resume)
    monkeypatch.setattr(sys, "argv", ["aws-iot-mock", "list-things", "--state-dir", str(tmp_path)])

    with pytest.raises(SystemExit) as exited:
        startup_gc.main_entry()

    assert exited.value.code == 0, capsys.readouterr().err
    assert paused_while_parsing == [True]
    assert (gc.isenabled(), startup_gc.paused()) == (True, False)
