"""The monitor's read positions: a log read as a dead writer's `.partial` is not read again once
it is recovered under its finished name, and positions stored by full file name still count."""
import json

from ml.monitoring.log_positions import LogPositions


def test_a_partial_read_in_place_is_not_read_again_after_its_rename(tmp_path):
    positions = LogPositions(tmp_path / "positions.json")
    partial = tmp_path / "requests-1-2-0.tfrecord.partial"
    positions.mark_read([partial])
    finished = tmp_path / "requests-1-2-0.tfrecord"
    other = tmp_path / "requests-1-2-1.tfrecord"
    assert LogPositions(tmp_path / "positions.json").new_files([finished, other]) == [other]


def test_positions_written_with_full_file_names_still_count(tmp_path):
    path = tmp_path / "positions.json"
    path.write_text(json.dumps({"files": ["requests-1-2-0.tfrecord"]}))
    files = [tmp_path / "requests-1-2-0.tfrecord", tmp_path / "requests-1-2-1.tfrecord"]
    assert LogPositions(path).new_files(files) == files[1:]
