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
