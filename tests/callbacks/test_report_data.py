"""ReportData: history.csv and report_data.json's data, model and test sections."""

from types import SimpleNamespace

from litlab.callbacks import ReportData


def test_a_new_test_removes_the_images_of_an_earlier_one(tmp_path):
    """A resumed run that tests without evaluation_images must not link the first run's."""
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("confusion_matrix.png", "top_losses.png", "learning_curves.png"):
        (plots / name).write_bytes(b"old")
    ReportData(tmp_path).on_test_start(SimpleNamespace(is_global_zero=True), None)
    assert [p.name for p in plots.iterdir()] == ["learning_curves.png"]
