"""Version folder names and model names that reach the filesystem."""
import pytest

from ml.core.model_names import MODEL_NAME_PATTERN, check_model_name, is_valid_model_name
from ml.core.serving_layout import list_version_dirs, next_version, parse_version_dir_name


@pytest.mark.parametrize("name, version", [
    ("1", 1), ("0", 0), ("42", 42), (str(2**63 - 1), 2**63 - 1),
    ("\u0661\u0662", None), ("\u00b2", None), ("\uff11", None), ("-1", None), ("+1", None),
    (" 1", None), ("1 ", None), ("", None), ("007", None), (str(2**63), None), ("9" * 5000, None),
    ("1.5", None), (".tmp-3", None),
])
def test_only_plain_ascii_int64_names_are_versions(name, version):
    assert parse_version_dir_name(name) == version


def test_odd_version_folders_are_ignored_not_fatal(tmp_path):
    for name in ("3", "12", "\u0661\u0662", "\u00b2", "9" * 200, "007", ".staging-4"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version folder")
    assert list_version_dirs(tmp_path) == [3, 12]
    assert next_version(tmp_path) == 13
    assert list_version_dirs(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["risk_model", "m", "a.b-c_1", "A" * 128, "9lives"])
def test_plain_model_names_are_valid(name):
    assert is_valid_model_name(name)
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", [
    "", "/etc/passwd", "../../x", "..", "a..b", "a/b", "a\\b", ".hidden", "-flag", "_x",
    "A" * 129, "x" * 8192, "name\n", "na me", "caf\u00e9", "\u0661", "a\x00b", None, 3,
])
def test_names_that_could_leave_their_folder_are_refused(name):
    assert not is_valid_model_name(name)
    with pytest.raises(ValueError, match="invalid serving model name"):
        check_model_name(name, "serving model name")


def test_long_names_are_shortened_in_the_message():
    with pytest.raises(ValueError) as raised:
        check_model_name("x" * 8192)
    assert len(str(raised.value)) < 300 and "8192 characters" in str(raised.value)
    assert MODEL_NAME_PATTERN.startswith("[A-Za-z0-9]")
