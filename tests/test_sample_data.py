"""The bundled sample files are what ``postback-lab sample`` writes with its defaults, and
every path to them goes through ``sample.data_dir()`` / ``sample.paths()``."""

from __future__ import annotations

from pathlib import Path

from postback_lab import sample


def test_bundled_files_live_in_the_package() -> None:
    here = Path(sample.__file__).resolve().parent / "_data"
    assert sample.data_dir() == here
    assert sample.paths() == {
        "events": here / "events.csv",
        "rules": here / "postbacks.yaml",
        "platform_log": here / "platform_log.csv",
    }


def test_bundled_files_equal_a_fresh_default_sample(tmp_path) -> None:
    written = sample.write(tmp_path)
    for key, bundled in sample.paths().items():
        assert written[key].read_bytes() == bundled.read_bytes(), (
            f"{bundled.name} differs from what sample.write() makes now; regenerate it with "
            "postback-lab sample -o postback_lab/_data"
        )


def test_the_sample_platform_log_says_its_time_zone(tmp_path) -> None:
    """The demo prints no "read as UTC" note: the sample's firing times carry +00:00."""
    from postback_lab import LogStore, import_log

    LogStore(tmp_path / "log.duckdb").close()
    result = import_log(sample.paths()["platform_log"], tmp_path / "log.duckdb")
    assert result.rows > 1000 and not [n for n in result.notes if "time zone" in n]
