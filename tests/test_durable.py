"""xds.durable: directory fsyncs and write-behind, and the spool that writes behind."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from xds import durable
from xds.soap.attachments import BACKGROUND_WRITE_ABOVE, Spool


class Recorder:
    """Stands in for :func:`xds.durable.start_writeback`, recording each range (and passing it
    on to the real call, so the files stay real)."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, fd: int, offset: int, length: int) -> bool:
        self.calls.append((fd, offset, length))
        return self.real(fd, offset, length)  # type: ignore[operator,no-any-return]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder(durable.start_writeback)
    monkeypatch.setattr(durable, "start_writeback", rec)
    return rec


def test_fsync_dir_flushes_an_existing_directory_and_reports_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "entry").write_bytes(b"x")
    durable.fsync_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        durable.fsync_dir(tmp_path / "missing")
    durable.fsync_dir(tmp_path / "missing", ignore_errors=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_start_writeback_runs_on_a_real_file_and_changes_nothing_in_it(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        assert durable.start_writeback(fd, 0, len(data)) is True
        assert durable.start_writeback(fd, 0, 0) is False  # nothing to do
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_write_behind_hands_each_stretch_to_the_disk_once(recorder: Recorder, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        behind = durable.WriteBehind(fd, every=1000)
        for size in (300, 300, 300, 300, 2500, 10, 990):
            os.write(fd, b"x" * size)
            behind.wrote(size)
    finally:
        os.close(fd)
    # 1200 written -> [0, 1200); 3700 -> [1200, 3700); 3710 waits; 4700 -> [3700, 4700).
    assert [(offset, length) for _, offset, length in recorder.calls] == [(0, 1200), (1200, 2500), (3700, 1000)]
    assert {call[0] for call in recorder.calls} == {fd}


@pytest.mark.parametrize("size", [700_000, BACKGROUND_WRITE_ABOVE + 3_000_000])
def test_a_write_behind_spool_hands_its_file_to_the_disk_as_it_grows(recorder: Recorder, tmp_path: Path, size: int) -> None:
    """In the caller's thread for a small part, in the writer thread past BACKGROUND_WRITE_ABOVE."""
    data = os.urandom(size)
    spool = Spool(tmp_path, write_behind=True)
    sink = spool.sink("part@test", "application/octet-stream")
    for offset in range(0, size, 100_000):
        sink.write(data[offset : offset + 100_000])
    attachment = sink.close()
    assert attachment.path is not None and attachment.path.read_bytes() == data
    assert (attachment.sha1_hex, attachment.sha256_hex, attachment.size) == (
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        size,
    )
    ranges = sorted((offset, length) for _, offset, length in recorder.calls)
    # Contiguous from the start, no overlap, leaving less than one stretch for the fsync.
    assert ranges[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False))
    covered = ranges[-1][0] + ranges[-1][1]
    assert size - durable.WRITE_BEHIND_EVERY < covered <= size
    spool.cleanup()


def test_a_plain_spool_does_not_write_behind(recorder: Recorder, tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    sink = spool.sink("part@test", "application/octet-stream")
    sink.write(os.urandom(1_000_000))
    sink.close()
    assert recorder.calls == []
    spool.cleanup()
