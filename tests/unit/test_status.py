from selfheal.core.status import RegistryState, invalid_status, registry_status, synced_status, unavailable_status

ROW = RegistryState(id="abc", version="1.0.0", active=True, source_generation=1)


def conditions(status):
    return {c["type"]: c for c in status["conditions"]}


def test_synced_active_patch_is_ready():
    status = synced_status({}, generation=1, row=ROW, now="T1")
    assert (status["state"], status["reason"], status["observedGeneration"]) == ("Active", "Synced", 1)
    by_type = conditions(status)
    assert {t: c["status"] for t, c in by_type.items()} == {"Ready": "True", "Synced": "True", "Active": "True"}
    assert all(c["observedGeneration"] == 1 and c["lastTransitionTime"] == "T1" for c in by_type.values())


def test_transition_time_moves_only_when_status_flips():
    first = synced_status({}, generation=1, row=ROW, now="T1")
    again = synced_status(first, generation=2, row=ROW, now="T2")
    assert conditions(again)["Ready"]["lastTransitionTime"] == "T1"
    assert conditions(again)["Ready"]["observedGeneration"] == 2
    down = unavailable_status(again, generation=3, error="connection refused", now="T3")
    assert conditions(down)["Synced"]["lastTransitionTime"] == "T3"
    assert (down["state"], down["reason"]) == ("Pending", "RegistryUnavailable")
    # Active keeps its last known value while the registry is away.
    assert conditions(down)["Active"]["status"] == "True"


def test_invalid_spec():
    status = invalid_status({}, generation=4, problems=["spec.patchCode: 1:3: bad"], now="T")
    assert (status["state"], status["reason"]) == ("Invalid", "InvalidSpec")
    assert "spec.patchCode" in conditions(status)["Ready"]["message"]


def test_registry_deactivation_changes_only_active():
    synced = synced_status({}, generation=1, row=ROW, now="T1")
    off = RegistryState(
        id="abc", version="1.0.0", active=False, source_generation=1, deactivation_reason="DeactivatedInRegistry"
    )
    status = registry_status(synced, generation=1, row=off, now="T2")
    assert (status["state"], status["reason"]) == ("Inactive", "DeactivatedInRegistry")
    assert conditions(status)["Ready"]["lastTransitionTime"] == "T1"
    assert conditions(status)["Active"]["lastTransitionTime"] == "T2"
