"""Playbooks: the library, a version's steps, uploading a new version with errors shown by
line, and the diff against the previous version."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from offboard.playbooks.models import PlaybookVersion
from offboard.playbooks.spec import builtin_playbook_paths


def logged_in(actor):
    c = Client()
    c.force_login(actor.user)
    return c


@pytest.fixture
def web(cast, playbooks):
    return logged_in(cast["alice"])


def consulting_source() -> str:
    return next(p for p in builtin_playbook_paths() if p.stem == "consulting").read_text()


def consulting_v2() -> str:
    """Renames a step, drops the retainer non-renewal step and adds a new one."""
    text = consulting_source()
    text = text.replace(
        "title: Confirm receipt of the termination notice in writing",
        "title: Confirm the termination notice in writing within two days",
    )
    start = text.index("  - key: send_non_renewal_notice")
    end = text.index("  - key: agree_close_out_scope")
    text = text[:start] + text[end:]
    new_step = (
        "  - key: archive_engagement_file\n"
        "    phase: data\n"
        "    title: Archive the engagement file under the retention policy\n"
        "    owner_role: case_owner\n"
        "    due: {from: end, offset_days: 10}\n"
        "    evidence: [note]\n\n"
    )
    marker = "  # --- finance"
    return text.replace(marker, new_step + marker, 1)


def test_the_library_lists_every_playbook_with_its_latest_version(web, playbooks):
    body = web.get("/playbooks/").content.decode()
    for version in playbooks.values():
        assert version.playbook.name in body
        assert f'href="/playbooks/{version.playbook.slug}/"' in body


def test_a_playbook_page_shows_its_steps_by_phase_and_its_versions(web, playbooks):
    version = playbooks["consulting"]
    body = web.get("/playbooks/consulting/").content.decode()
    for step in version.spec.steps:
        assert step.key in body
    assert "v1" in body and version.sha256[:16] in body


def test_uploading_a_new_version_then_its_diff(web, playbooks):
    response = web.post("/playbooks/upload/", {"source": consulting_v2()})
    v2 = PlaybookVersion.objects.get(playbook__slug="consulting", version=2)
    assert response.status_code == 302
    assert response["Location"] == "/playbooks/consulting/versions/2/diff/"
    body = web.get(response["Location"]).content.decode()
    added = body.split("added</h3>")[1].split("</ul>")[0]
    removed = body.split("removed</h3>")[1].split("</ul>")[0]
    changed = body.split("changed</h3>")[1].split("</ul>")[0]
    assert "archive_engagement_file" in added
    assert "send_non_renewal_notice" in removed
    assert "confirm_notice" in changed and "(title)" in changed
    assert '<span class="d-del">-    title: Confirm receipt of the termination notice' in body
    assert '<span class="d-add">+  - key: archive_engagement_file</span>' in body
    assert v2.created_by.username == "alice"


def test_a_yaml_file_can_be_uploaded(web, playbooks):
    upload = SimpleUploadedFile("consulting.yaml", consulting_v2().encode(), "text/yaml")
    response = web.post("/playbooks/upload/", {"file": upload, "source": ""})
    assert response.status_code == 302
    assert PlaybookVersion.objects.filter(playbook__slug="consulting", version=2).exists()


def test_errors_are_shown_by_line_and_nothing_is_saved(web, playbooks):
    text = consulting_source().replace("owner_role: case_owner", "owner_role: intern", 1)
    text = text.replace("offset_days: 5}", "offset_days: soon}", 1)
    bad_lines = [
        n
        for n, line in enumerate(text.splitlines(), start=1)
        if "intern" in line or "offset_days: soon" in line
    ]
    response = web.post("/playbooks/upload/", {"source": text})
    body = response.content.decode()
    assert response.status_code == 422
    assert "nothing was saved" in body
    for n in bad_lines:
        assert f'<a href="#L{n}" class="lineno">line {n}</a>' in body
        assert re.search(rf'<span id="L{n}" class="bad">', body)
    assert "intern" in body  # the text stays in the form to fix it
    assert PlaybookVersion.objects.filter(playbook__slug="consulting").count() == 1


def test_an_empty_upload_says_what_to_do(web):
    response = web.post("/playbooks/upload/", {"source": "  "})
    assert response.status_code == 422
    assert "Paste the YAML or choose a file" in response.content.decode()


def test_an_operator_cannot_upload_playbooks(cast, playbooks):
    oscar = logged_in(cast["oscar"])
    assert oscar.get("/playbooks/").status_code == 200
    for response in (
        oscar.get("/playbooks/upload/"),
        oscar.post("/playbooks/upload/", {"source": consulting_v2()}),
    ):
        assert response.status_code == 403
        assert "may not upload playbooks" in response.content.decode()
    assert PlaybookVersion.objects.filter(playbook__slug="consulting").count() == 1


def test_another_organizations_playbook_is_a_404(playbooks, mallory):
    c = logged_in(mallory)
    assert c.get("/playbooks/consulting/").status_code == 404
    assert c.get("/playbooks/consulting/versions/1/diff/").status_code == 404
