"""The home page: the steps as links, the workspace counts and the first-run pointer."""

from __future__ import annotations

from core.store import DatasetRecord, Store
from tests.pages.conftest import fabricate_run, open_page


def test_home_lists_the_steps_and_points_a_newcomer_to_the_sample(store: Store) -> None:
    at = open_page()
    assert at.title[0].value == "Glassbox"
    # page links carry the page's URL name, which Streamlit derives from pages/<n>_<Name>.py
    assert [link.proto.page for link in at.get("page_link")][:4] == ["Data", "Train", "Runs", "Evaluate"]
    assert all(link.proto.page_script_hash for link in at.get("page_link")), "every link resolves to a page"
    assert {m.label: m.value for m in at.metric} == {"Datasets": "0", "Runs": "0", "Active or queued runs": "0"}
    assert any("Start with the sample digits" in link.proto.label for link in at.get("page_link"))
    assert "Glassbox" in at.sidebar.markdown[0].value


def test_home_counts_what_the_workspace_holds(store: Store, dataset: DatasetRecord) -> None:
    fabricate_run(store, dataset, "completed")
    fabricate_run(store, dataset, "running")
    fabricate_run(store, dataset, "queued")
    at = open_page()
    assert {m.label: m.value for m in at.metric} == {"Datasets": "1", "Runs": "3", "Active or queued runs": "2"}
    assert not any("sample digits" in link.proto.label for link in at.get("page_link"))
