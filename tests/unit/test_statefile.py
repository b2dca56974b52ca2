from dvr_agent.agent import statefile


def test_saved_allocations_load_back_identically(tmp_path):
    data = {"link_local": {"r1": "169.254.64.0/31"}, "fip_priorities": {"f1": 32768}}
    statefile.save(str(tmp_path), data)
    assert statefile.load(str(tmp_path)) == data
    assert not (tmp_path / "allocations.json.tmp").exists()


def test_a_missing_or_damaged_file_gives_fresh_allocations(tmp_path):
    assert statefile.load(str(tmp_path)) == {}
    (tmp_path / "allocations.json").write_text("{not json")
    assert statefile.load(str(tmp_path)) == {}
    (tmp_path / "allocations.json").write_text("[1, 2]")
    assert statefile.load(str(tmp_path)) == {}
