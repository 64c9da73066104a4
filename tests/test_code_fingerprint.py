"""The source digests recorded beside Examples and Trainer runs (ml.core.code_fingerprint):
they change with a source file and only with one, so a reproduction can name changed code."""
import pytest

from ml.core import code_fingerprint


@pytest.fixture
def tree(tmp_path, monkeypatch):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(code_fingerprint, "REPO_ROOT", tmp_path)
    code_fingerprint.source_fingerprint.cache_clear()
    yield tmp_path
    code_fingerprint.source_fingerprint.cache_clear()


def _digest(*packages):
    code_fingerprint.source_fingerprint.cache_clear()
    return code_fingerprint.source_fingerprint(*packages)


def test_a_changed_source_changes_the_digest_and_a_test_file_does_not(tree):
    before = _digest("pkg")
    assert len(before) == 16 and _digest("pkg") == before
    (tree / "pkg" / "a_test.py").write_text("assert True\n")
    (tree / "pkg" / "test_a.py").write_text("assert True\n")
    (tree / "pkg" / "notes.txt").write_text("not code\n")
    assert _digest("pkg") == before
    (tree / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    assert _digest("pkg") != before


def test_a_renamed_file_or_a_missing_package_changes_it_too(tree):
    before = _digest("pkg")
    (tree / "pkg" / "a.py").rename(tree / "pkg" / "c.py")
    assert _digest("pkg") != before
    assert _digest("pkg", "absent") != _digest("pkg")


def test_the_real_packages_have_digests():
    code_fingerprint.source_fingerprint.cache_clear()
    generator = code_fingerprint.source_fingerprint(*code_fingerprint.GENERATOR_PACKAGES)
    model = code_fingerprint.source_fingerprint("models/risk", "models/common")
    assert generator != model and all(len(d) == 16 for d in (generator, model))
