"""Issue 17 #7: ``insider-selling import`` streams every file within bounds: the decompressed size
of a file (``INSIDER_IMPORT_MAX_BYTES``) and the length of a line (``INSIDER_IMPORT_MAX_LINE_BYTES``)
are checked while reading, and breaking one stops the import with an error naming the file and the
line, in bounded memory (a 1 MB gzip holding 1 GiB on one line took 2.25 GB before)."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from ingest.errors import ImportFormatError
from ingest.importers import import_directory
from ingest.importers.base import ReadLimits
from insider_selling.cli import main

HEADER = "symbol,funding_time,funding_rate"
T0 = 1_772_323_200_000


def _bomb(path: Path, line_bytes: int) -> Path:
    """A gzip whose second line is ``line_bytes`` long (commas: no CSV field grows large)."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write((HEADER + "\n").encode())
        chunk = b"," * (1 << 20)
        for _ in range(line_bytes >> 20):
            out.write(chunk)
        out.write(b"\n")
    return path


def test_a_long_line_in_a_gzip_stops_at_the_line_bound_in_bounded_memory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _bomb(src / "bomb.csv.gz", 64 << 20)  # 64 MiB on one line, 64 KB compressed
    tracemalloc.start()
    try:
        with pytest.raises(ImportFormatError) as refused:
            import_directory(src, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert "bomb.csv.gz:2:" in message and "65536 bytes" in message and "INSIDER_IMPORT_MAX_LINE_BYTES" in message
    assert peak < 8 << 20, peak  # a few read buffers, never the line


def test_the_decompressed_size_of_a_file_is_bounded(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rows = "\n".join(f"ETHUSDT,{T0 + i * 28_800_000},-0.0001" for i in range(40_000))
    text = f"{HEADER}\n{rows}\n".encode()
    (src / "big.csv.gz").write_bytes(gzip.compress(text))
    with pytest.raises(ImportFormatError) as refused:
        import_directory(src, tmp_path / "out", limits=ReadLimits(max_bytes=256 * 1024, max_line_bytes=1024))
    message = str(refused.value)
    assert "big.csv.gz:" in message and "262144 bytes" in message and "INSIDER_IMPORT_MAX_BYTES" in message
    line = int(message.split("big.csv.gz:")[1].split(":")[0])
    starts_at = sum(len(row) + 1 for row in text.split(b"\n")[: line - 1])
    assert 256 * 1024 - 64 * 1024 <= starts_at <= 256 * 1024  # the line being read when it was crossed
    # within the bounds the same file imports
    result = import_directory(src, tmp_path / "ok", limits=ReadLimits(max_bytes=4 << 20, max_line_bytes=1024))
    assert result.files[0].kept == 40_000


def test_the_cli_names_the_file_and_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "wide.csv").write_text(HEADER + "\nETHUSDT," + "9" * 5000 + ",-0.0001\n")
    monkeypatch.setenv("INSIDER_IMPORT_MAX_LINE_BYTES", "4096")
    assert main(["import", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "wide.csv:2:" in err and "4096 bytes" in err
