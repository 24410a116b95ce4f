"""Importing playbooks into an organization: immutable versions, nothing written on error."""

import pytest

from offboard.core.errors import Conflict, PermissionDenied
from offboard.ledger.models import LedgerEntry
from offboard.playbooks.models import Playbook, PlaybookVersion
from offboard.playbooks.services import import_playbook
from offboard.playbooks.spec import PlaybookInvalid, builtin_playbook_paths


@pytest.fixture
def source():
    return builtin_playbook_paths()[0].read_text()


def test_importing_the_same_text_twice_keeps_one_version(alice, source):
    first = import_playbook(actor=alice, source=source)
    again = import_playbook(actor=alice, source=source)
    assert first.pk == again.pk and first.version == 1
    assert LedgerEntry.objects.filter(type="playbook.imported").count() == 1


def test_a_changed_text_becomes_the_next_version(alice, source):
    first = import_playbook(actor=alice, source=source)
    second = import_playbook(actor=alice, source=source + "\n# reviewed by legal\n")
    assert (first.version, second.version) == (1, 2)
    assert first.sha256 != second.sha256
    assert PlaybookVersion.objects.get(pk=first.pk).source == source


def test_versions_are_immutable(alice, source):
    version = import_playbook(actor=alice, source=source)
    version.source = "tampered"
    with pytest.raises(Conflict):
        version.save()


def test_nothing_is_imported_when_the_playbook_is_invalid(alice, source):
    broken = source.replace("steps:", "stepz:", 1)
    with pytest.raises(PlaybookInvalid) as exc:
        import_playbook(actor=alice, source=broken)
    assert any(e.line for e in exc.value.errors)
    assert Playbook.objects.count() == 0 and PlaybookVersion.objects.count() == 0
    assert not LedgerEntry.objects.filter(type="playbook.imported").exists()


def test_operators_cannot_import_playbooks(cast, source):
    with pytest.raises(PermissionDenied):
        import_playbook(actor=cast["oscar"], source=source)


def test_playbooks_of_another_organization_are_invisible(alice, mallory, source):
    from offboard.core.errors import NotFound
    from offboard.playbooks.selectors import get_version

    version = import_playbook(actor=alice, source=source)
    with pytest.raises(NotFound):
        get_version(mallory.org, version.playbook.slug)
