"""Bag structure (RFC 8493) and fixity: the manifests, the tag manifest, Payload-Oxum."""

from __future__ import annotations

from offboard.packs.verify import layout as fmt
from offboard.packs.verify.run import Run


def check_bag(run: Run) -> None:
    problems: list[str] = []
    archive = run.archive
    problems += archive.unreadable.values()
    present = set(archive.members) | set(archive.unreadable)
    for path in sorted(present):
        if fmt.kind_of(path) is None:
            problems.append(f"{path} is not part of the evidence-pack layout")
    for path in (*fmt.TAG_FILES, fmt.CHECKPOINT, fmt.CASE_JSON, fmt.README, fmt.CERTIFICATE):
        if path not in present:
            problems.append(f"{path} is missing")
    if run.has(fmt.BAGIT_TXT) and archive.members[fmt.BAGIT_TXT].content != fmt.BAGIT_TXT_CONTENT:
        problems.append(
            f"{fmt.BAGIT_TXT} must say `BagIt-Version: 1.0` and "
            "`Tag-File-Character-Encoding: UTF-8`, and nothing else"
        )
    if run.has(fmt.BAG_INFO):
        try:
            info, info_problems = fmt.parse_bag_info(archive.text(fmt.BAG_INFO))
        except ValueError as exc:
            info, info_problems = {}, [str(exc)]
        problems += info_problems
        refs = info.get("External-Identifier", [])
        if len(refs) != 1 or not refs[0]:
            problems.append(f"{fmt.BAG_INFO} must give the case as one External-Identifier")
        else:
            run.case_ref = refs[0]
        run.bag_info = info
    run.add("bag", f"BagIt 1.0 bag in {archive.base}/, evidence-pack layout", problems)


def _read_manifest(run: Run, name: str, problems: list[str]) -> dict[str, str]:
    if not run.has(name):
        return {}
    try:
        entries, found = fmt.parse_manifest(run.archive.text(name), name)
    except ValueError as exc:
        problems.append(str(exc))
        return {}
    problems += found
    return entries


def _compare(run: Run, manifest: str, entries: dict[str, str], expected: set[str]) -> list[str]:
    problems = []
    for path in sorted(expected - set(entries)):
        problems.append(f"{path} is not listed in {manifest}")
    for path, digest in sorted(entries.items()):
        member = run.archive.members.get(path)
        if path not in expected and member is None:
            if path in run.archive.unreadable:
                continue  # said already
            problems.append(f"{manifest} lists {path}, which is not in the bag")
        elif path not in expected:
            problems.append(f"{manifest} lists {path}, which it must not cover")
        elif member is not None and member.sha256 != digest:
            problems.append(
                f"{path} does not match {manifest}: its sha256 is {member.sha256}, "
                f"the manifest says {digest}"
            )
    return problems


def check_fixity(run: Run) -> None:
    problems: list[str] = []
    members = run.archive.members
    payload = {p for p in (*members, *run.archive.unreadable) if p.startswith("data/")}
    manifest = _read_manifest(run, fmt.MANIFEST, problems)
    if run.has(fmt.MANIFEST):
        problems += _compare(run, fmt.MANIFEST, manifest, payload)
    tags = {p for p in fmt.TAG_FILES if p != fmt.TAGMANIFEST and p in members}
    tagmanifest = _read_manifest(run, fmt.TAGMANIFEST, problems)
    if run.has(fmt.TAGMANIFEST):
        problems += _compare(run, fmt.TAGMANIFEST, tagmanifest, tags)
    octets = sum(members[p].size for p in payload if p in members)
    count = len(payload)
    oxum = run.bag_info.get("Payload-Oxum", [])
    if run.has(fmt.BAG_INFO):
        if len(oxum) != 1:
            problems.append(f"{fmt.BAG_INFO} must have one Payload-Oxum")
        elif oxum[0] != f"{octets}.{count}":
            problems.append(
                f"{fmt.BAG_INFO}: Payload-Oxum is {oxum[0]}, the payload is {octets}.{count} "
                "(bytes.files)"
            )
    run.add(
        "fixity",
        f"{count} payload files ({octets:,} bytes) and {len(tags)} tag files match "
        f"{fmt.MANIFEST} and {fmt.TAGMANIFEST}",
        problems,
    )
