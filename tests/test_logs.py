"""Structured logs: JSON lines, and journald's native protocol with the record's data as fields."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import logs

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_lines_carry_the_message_and_its_data(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    logs.setup(logging.INFO, "json")
    logging.getLogger("appliance.test").info("turn", extra={"eos_to_first_audio": 0.93, "words": 4})
    logging.getLogger("appliance.test").debug("not shown at info")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["msg"] == "turn" and doc["level"] == "info" and doc["logger"] == "appliance.test"
    assert doc["eos_to_first_audio"] == 0.93 and doc["words"] == 4


def test_journal_field_names_follow_journald_rules() -> None:
    assert logs.journal_field("eos_to_first_audio") == "EOS_TO_FIRST_AUDIO"
    assert logs.journal_field("_private") == "PRIVATE"
    assert logs.journal_field("wake-word") == "WAKE_WORD"
    assert logs.journal_field("2nd") == "F_2ND"


def test_auto_means_the_journal_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    out = tmp_path / "stderr"
    with out.open("w") as f:
        st = os.fstat(f.fileno())
        code = "import sys; from appliance import logs; print(logs.under_journald(), file=sys.stdout)"
        same = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        other = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}
        yes = subprocess.run(
            [sys.executable, "-c", code],
            stderr=f,
            env=same,
            capture_output=False,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        no = subprocess.run(
            [sys.executable, "-c", code], stderr=f, env=other, stdout=subprocess.PIPE, text=True, check=True
        )
    assert yes.stdout.strip() == "True" and no.stdout.strip() == "False"


def test_journal_records_go_out_in_the_native_protocol_with_their_fields(restore_logging: None) -> None:
    """A stand-in journald: a datagram socket at journald's own address (only where no journald runs)."""
    if JOURNAL_SOCKET.exists():
        pytest.skip("a real journald owns /run/systemd/journal/socket here")
    JOURNAL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(JOURNAL_SOCKET))
    server.settimeout(5)
    try:
        logs.setup(logging.INFO, "journal")
        logging.getLogger("appliance.test").warning("microphone failed", extra={"device": "USB", "retry_in": 0.5})
        datagram = server.recv(65536).decode()
    finally:
        server.close()
        JOURNAL_SOCKET.unlink()
    fields = dict(line.split("=", 1) for line in datagram.strip().split("\n") if "=" in line)
    assert fields["MESSAGE"] == "microphone failed device=USB retry_in=0.5"
    assert fields["PRIORITY"] == "4" and fields["LOGGER"] == "appliance.test"
    assert fields["DEVICE"] == "USB" and fields["RETRY_IN"] == "0.5" and fields["SYSLOG_IDENTIFIER"] == "appliance"
