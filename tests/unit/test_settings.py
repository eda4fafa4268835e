"""Settings: unknown names are an error with a suggestion; reserved test variables are left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingestq.settings import InvalidSetting, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's or CI's own INGESTQ_* variables must not leak into these tests.
    for key in list(os.environ):
        if key.upper().startswith("INGESTQ_"):
            monkeypatch.delenv(key)


def test_a_misspelt_keyword_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings(concurency=4)
    assert str(caught.value) == "unknown setting concurency (did you mean concurrency?)"
    assert caught.value.message == str(caught.value)
    assert caught.value.name == "concurency"


def test_a_misspelt_environment_variable_is_an_error_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGESTQ_CONCURENCY", "4")
    with pytest.raises(InvalidSetting) as caught:
        Settings()
    assert str(caught.value) == "unknown setting INGESTQ_CONCURENCY (did you mean INGESTQ_CONCURRENCY?)"


def test_a_misspelt_lower_case_variable_is_reported_as_spelt(monkeypatch: pytest.MonkeyPatch) -> None:
    # names are case-insensitive (ingestq_concurrency works), so the match is too
    monkeypatch.setenv("ingestq_lease_secs", "4")
    with pytest.raises(
        InvalidSetting, match=r"^unknown setting ingestq_lease_secs \(did you mean INGESTQ_LEASE_SECONDS\?\)$"
    ):
        Settings()


def test_model_copy_rejects_an_unknown_name() -> None:
    with pytest.raises(
        InvalidSetting, match=r"^unknown setting auto_migrat \(did you mean auto_migrate\?\)$"
    ):
        Settings().model_copy(update={"auto_migrat": False})


def test_no_suggestion_when_nothing_is_close(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSetting, match=r"^unknown setting zzz$"):
        Settings(zzz=1)
    monkeypatch.setenv("INGESTQ_ZZZ", "1")
    with pytest.raises(InvalidSetting, match=r"^unknown setting INGESTQ_ZZZ$"):
        Settings()


def test_reserved_test_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTQ_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("ingestq_test_anything", "x")
    monkeypatch.setenv("INGESTQ_CONCURRENCY", "7")
    assert Settings().concurrency == 7


def test_known_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTQ_LEASE_SECONDS", "3")
    settings = Settings(concurrency="5")
    assert (settings.concurrency, settings.lease_seconds) == (5, 3.0)
    assert settings.model_copy(update={"ocr": "off"}).ocr is False


def test_a_bad_value_is_still_one_line() -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings(concurrency="many")
    assert str(caught.value) == "invalid setting concurrency: must be an integer, got 'many'"
    assert caught.value.message == str(caught.value)


def test_ingest_path_roots_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ingest_path_roots is None  # unset: unrestricted
    monkeypatch.setenv("INGESTQ_INGEST_PATH_ROOTS", os.pathsep.join(["/srv/docs", "", "/data"]))
    assert Settings().ingest_path_roots == ("/srv/docs", "/data")
    monkeypatch.setenv("INGESTQ_INGEST_PATH_ROOTS", "")
    assert Settings().ingest_path_roots == ()  # set but empty: no path ingestion
    assert Settings(ingest_path_roots=[Path("/a"), "/b"]).ingest_path_roots == ("/a", "/b")
    with pytest.raises(InvalidSetting, match=r"^invalid setting ingest_path_roots: "):
        Settings(ingest_path_roots=3)


def test_probe_marker_dir_defaults_to_off() -> None:
    assert Settings().probe_marker_dir is None
