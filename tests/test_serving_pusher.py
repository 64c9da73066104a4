"""ServingPusher's filesystem side: integer versions, atomic publish, manifest written."""

import pytest

from components.serving_pusher import versions
from ml.core.serving_layout import next_version
from ml.serving.manifest import verify_manifest


def _saved_model(tmp_path):
    model = tmp_path / "candidate"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables" / "variables.index").write_bytes(b"index")
    return model


def test_versions_increase_from_the_serving_folder(tmp_path):
    base = tmp_path / "etrm_risk_model"
    assert next_version(base) == 1
    (base / "1").mkdir(parents=True)
    (base / ".staging-9-1").mkdir()
    assert next_version(base) == 2
    (base / "7").mkdir()
    assert next_version(base) == 8


def test_publish_copies_with_a_verifiable_manifest(tmp_path):
    base = tmp_path / "serving" / "etrm_risk_model"
    target = versions.publish_version(str(_saved_model(tmp_path)), base, 1)
    assert target == base / "1"
    assert verify_manifest(target) == []
    assert [p.name for p in base.iterdir()] == ["1"]
    (target / "saved_model.pb").write_bytes(b"tampered")
    assert verify_manifest(target)


def test_publish_never_overwrites_a_version(tmp_path):
    base = tmp_path / "etrm_risk_model"
    versions.publish_version(str(_saved_model(tmp_path)), base, 1)
    with pytest.raises(FileExistsError):
        versions.publish_version(str(_saved_model(tmp_path)), base, 1)
