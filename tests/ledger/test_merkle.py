"""RFC 9162 Merkle trees: Go-checked known answers, the store's plan/get path, and tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.ledger.merkle import (
    HASH_SIZE,
    MerkleTree,
    consistency_plan,
    consistency_proof,
    empty_root,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root_from_leaf_hashes,
    root_from_nodes,
    root_nodes,
    stored_node_count,
    verify_consistency,
    verify_inclusion,
)

# What it checks does not depend on the database: it runs in the SQLite pass only.
pytestmark = pytest.mark.offline

# A copy of ../shared/testdata/rfc9162-vectors.json (cross-checked against Go's sumdb/tlog),
# kept in the repository so a checkout tests itself; the test below keeps the two equal.
VECTORS_PATH = Path(__file__).resolve().parent / "data" / "rfc9162-vectors.json"
SHARED_VECTORS = (
    Path(__file__).resolve().parents[3] / "shared" / "testdata" / "rfc9162-vectors.json"
)
VECTORS = json.loads(VECTORS_PATH.read_text())
LEAVES = [leaf_hash(base64.b64decode(leaf)) for leaf in VECTORS["leaves"]]
TREE = MerkleTree(LEAVES)
CASES = VECTORS["cases"]


def test_the_vectors_are_the_shared_known_answers() -> None:
    if not SHARED_VECTORS.exists():
        pytest.skip(f"no shared test data at {SHARED_VECTORS} to compare with")
    assert VECTORS_PATH.read_bytes() == SHARED_VECTORS.read_bytes()


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _case_id(case: dict) -> str:
    return f"{case['kind']}-n{case['n']}-m{case['m']}"


def _flips(value: bytes):
    """Every copy of value with exactly one bit flipped."""
    for i in range(len(value) * 8):
        flipped = bytearray(value)
        flipped[i // 8] ^= 1 << (i % 8)
        yield bytes(flipped)


def _via_plan(plan: list[tuple[int, int]], tree: MerkleTree):
    """What a store does: fetch exactly the planned nodes in one query, then assemble."""
    fetched = {node: tree.node(*node) for node in plan}
    return lambda level, index: fetched[level, index]


def _generated(case: dict) -> list[bytes]:
    n, m = case["n"], case["m"]
    if case["kind"] == "incl":
        return inclusion_proof(m, n, _via_plan(inclusion_plan(m, n), TREE))
    return consistency_proof(m, n, _via_plan(consistency_plan(m, n), TREE))


def _verifies(case: dict, proof: list[bytes], **change) -> bool:
    args = {
        "n": case["n"],
        "m": case["m"],
        "root": _b64(case["root"]),
        "other": LEAVES[case["m"]] if case["kind"] == "incl" else _b64(case["oldroot"]),
    }
    args.update(change)
    if case["kind"] == "incl":
        return verify_inclusion(args["other"], args["m"], args["n"], proof, args["root"])
    return verify_consistency(args["m"], args["n"], args["other"], args["root"], proof)


# The RFC 9162 §2.1 definitions, written out recursively over leaf hashes, as a second opinion.
def _mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return empty_root()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, hashes[:k]), _mth(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _mth(hashes[:k])]


def _subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [_mth(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, hashes[:k], whole), _mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _mth(hashes[:k])]


def test_hashing_uses_the_rfc_domain_separation_prefixes():
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert empty_root().hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == empty_root() == MerkleTree().root()
    assert root_from_leaf_hashes([LEAVES[0]]) == LEAVES[0]
    assert len(empty_root()) == HASH_SIZE


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_root_matches_go(case):
    n, root = case["n"], _b64(case["root"])
    assert root_from_leaf_hashes(LEAVES[:n]) == root
    assert root_from_nodes(n, _via_plan(root_nodes(n), TREE)) == root
    assert MerkleTree(LEAVES[:n]).root() == root == TREE.root(n)
    if case["kind"] == "cons":
        assert TREE.root(case["m"]) == _b64(case["oldroot"])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_proof_matches_go_byte_for_byte(case):
    want = [_b64(p) for p in case["proof"]]
    assert _generated(case) == want
    if case["kind"] == "incl":
        assert TREE.inclusion_proof(case["m"], case["n"]) == want
    else:
        assert TREE.consistency_proof(case["m"], case["n"]) == want


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_go_proof_verifies(case):
    assert _verifies(case, [_b64(p) for p in case["proof"]])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_any_flipped_bit_is_rejected(case):
    proof = [_b64(p) for p in case["proof"]]
    for i, h in enumerate(proof):
        for bad in _flips(h):
            assert not _verifies(case, [*proof[:i], bad, *proof[i + 1 :]])
    for bad in _flips(_b64(case["root"])):
        assert not _verifies(case, proof, root=bad)
    other = LEAVES[case["m"]] if case["kind"] == "incl" else _b64(case["oldroot"])
    for bad in _flips(other):
        assert not _verifies(case, proof, other=bad)


def _genuine_root(size: int) -> bytes:
    return root_from_leaf_hashes([*LEAVES, leaf_hash(b"one more event")][:size])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_index_or_size_off_by_one_is_rejected(case):
    proof = [_b64(p) for p in case["proof"]]
    n, m = case["n"], case["m"]
    assert not _verifies(case, proof, m=m - 1)
    assert not _verifies(case, proof, m=m + 1)
    # A tree size always travels with its own root (both are in the signed checkpoint).
    assert not _verifies(case, proof, n=n - 1, root=_genuine_root(n - 1))
    assert not _verifies(case, proof, n=n + 1, root=_genuine_root(n + 1))


def test_the_root_not_the_proof_binds_the_tree_size():
    """RFC 9162 paths have the same shape for leaf 0 of trees of 3 and 4 leaves, so the
    size-3 proof also "verifies" as size 4 against the size-3 root. No genuine 4-leaf tree
    has that root (leaf and node hashes are domain-separated), which is why a checkpoint
    signs size and root together and verifiers must take both from it."""
    root3 = TREE.root(3)
    proof = TREE.inclusion_proof(0, 3)
    assert verify_inclusion(LEAVES[0], 0, 4, proof, root3)
    assert not verify_inclusion(LEAVES[0], 0, 4, proof, TREE.root(4))


def test_verifiers_return_false_on_nonsense_instead_of_raising():
    good = LEAVES[0]
    for args in [
        (b"short", 0, 1, [], good),
        (good, 0, 1, [], b"short"),
        (good, -1, 1, [], good),
        (good, 0, 0, [], good),
        (good, True, 2, [LEAVES[0]], good),
        (good, 0, 2, [b"x" * 31], good),
        (good, 0, 2, b"x" * 32, good),
        ("not bytes", 0, 1, [], good),
    ]:
        assert verify_inclusion(*args) is False
    for cargs in [
        (2, 1, good, good, []),
        (-1, 1, good, good, []),
        (1, 2, good, b"short", [good]),
        (1, 2, good, good, [b"short"]),
        (1, 2, good, good, []),
        (0, 5, good, good, []),  # old root of the empty tree must be SHA-256("")
        (0, 5, empty_root(), good, [good]),  # and nothing needs proving
    ]:
        assert verify_consistency(*cargs) is False
    assert verify_consistency(0, 5, empty_root(), good, [])


def test_planners_refuse_impossible_requests():
    for bad in [(0, 0), (5, 5), (-1, 3)]:
        with pytest.raises(ValueError, match="outside a tree"):
            inclusion_plan(*bad)
    with pytest.raises(ValueError, match="cannot prove consistency"):
        consistency_plan(5, 3)
    with pytest.raises(ValueError, match="not a complete subtree"):
        TREE.node(1, 500)  # leaves 1000..1001 do not exist
    with pytest.raises(ValueError, match="outside"):
        TREE.root(1001)


def test_append_builds_the_same_tree_as_bulk_loading():
    tree = MerkleTree()
    for i, h in enumerate(LEAVES[:300]):
        assert tree.append(h) == i
        assert tree.root() == TREE.root(i + 1)
    assert tree.size == 300


SMALL = MerkleTree(LEAVES[:300])
sizes = st.integers(min_value=1, max_value=300)


@st.composite
def inclusion_cases(draw):
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def consistency_cases(draw):
    new = draw(sizes)
    return draw(st.integers(min_value=0, max_value=new)), new


def _flip(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[(bit // 8) % len(value)] ^= 1 << (bit % 8)
    return bytes(flipped)


@settings(max_examples=300, deadline=None)
@given(inclusion_cases(), st.integers(min_value=0, max_value=255), st.data())
def test_inclusion_proofs_from_the_plan_agree_and_resist_tampering(case, bit, data):
    index, size = case
    root = SMALL.root(size)
    proof = inclusion_proof(index, size, _via_plan(inclusion_plan(index, size), SMALL))
    assert proof == SMALL.inclusion_proof(index, size) == _path(index, LEAVES[:size])
    assert root == root_from_leaf_hashes(LEAVES[:size]) == _mth(LEAVES[:size])
    leaf = LEAVES[index]
    assert verify_inclusion(leaf, index, size, proof, root)

    assert not verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert not verify_inclusion(
            leaf, index, size, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]], root
        )
        assert not verify_inclusion(leaf, index, size, proof[:i] + proof[i + 1 :], root)
    extra = data.draw(st.sampled_from(LEAVES[:300]))
    j = data.draw(st.integers(min_value=0, max_value=len(proof)))
    assert not verify_inclusion(leaf, index, size, [*proof[:j], extra, *proof[j:]], root)


@settings(max_examples=300, deadline=None)
@given(consistency_cases(), st.integers(min_value=0, max_value=255), st.data())
def test_consistency_proofs_from_the_plan_agree_and_resist_tampering(case, bit, data):
    old, new = case
    old_root, new_root = SMALL.root(old), SMALL.root(new)
    proof = consistency_proof(old, new, _via_plan(consistency_plan(old, new), SMALL))
    want = [] if old == 0 else _subproof(old, LEAVES[:new], True)
    assert proof == SMALL.consistency_proof(old, new) == want
    assert verify_consistency(old, new, old_root, new_root, proof)

    assert not verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    if old != 0:  # every tree extends the empty tree, whatever its root
        assert not verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert not verify_consistency(
            old, new, old_root, new_root, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        )
        assert not verify_consistency(old, new, old_root, new_root, proof[:i] + proof[i + 1 :])
    extra = data.draw(st.sampled_from(LEAVES[:300]))
    j = data.draw(st.integers(min_value=0, max_value=len(proof)))
    assert not verify_consistency(old, new, old_root, new_root, [*proof[:j], extra, *proof[j:]])


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_appends_complete_exactly_the_nodes_every_plan_needs(n):
    stored: set[tuple[int, int]] = set()
    for index in range(n):
        for level, i in nodes_completed_by_append(index):
            # Children first, so the store can hash each new node from rows it already has.
            assert level == 0 or {(level - 1, 2 * i), (level - 1, 2 * i + 1)} <= stored
            assert (level, i) not in stored
            stored.add((level, i))
            assert SMALL.node(level, i)  # it is a complete subtree of the first n leaves
    assert len(stored) == 2 * n - n.bit_count()
    for size in range(1, n + 1):
        assert set(root_nodes(size)) <= stored
        assert set(inclusion_plan(size - 1, size)) <= stored
        assert set(inclusion_plan(size // 2, size)) <= stored
        assert set(consistency_plan(size // 3, size)) <= stored


def test_plans_cover_every_node_for_small_trees_exhaustively():
    for size in range(1, 70):
        completed = {node for i in range(size) for node in nodes_completed_by_append(i)}
        for index in range(size):
            assert set(inclusion_plan(index, size)) <= completed
        for old in range(size + 1):
            assert set(consistency_plan(old, size)) <= completed


def test_a_proof_reads_at_most_two_nodes_per_level():
    for size in (1, 2, 3, 255, 256, 257, 1000, 999_999, 2**40 + 12345):
        depth = max(1, (size - 1).bit_length())
        assert len(inclusion_plan(size // 3, size)) <= 2 * depth
        assert len(consistency_plan(size // 3 or 1, size)) <= 2 * depth


def test_the_core_needs_only_the_standard_library_and_cryptography():
    code = (
        "import sys\n"
        "import offboard.ledger.merkle, offboard.ledger.note, offboard.ledger.tlogproof\n"
        "tops = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(t for t in tops if t not in sys.stdlib_module_names and t[0] != '_'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['cryptography', 'offboard']"


@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=14))
def test_stored_node_count_counts_the_complete_subtrees_from_a_level(n, level):
    complete = sum(1 for lv in range(level, 14) for _ in range(n >> lv))
    assert stored_node_count(n, level) == complete
    assert stored_node_count(n) == 2 * n - n.bit_count()


@given(st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=5), st.data())
def test_joined_trees_equal_the_tree_of_all_leaves(k, parts, data):
    width = 1 << k
    last = data.draw(st.integers(min_value=0, max_value=width))
    leaves = [leaf_hash(str(i).encode()) for i in range(width * (parts - 1) + last)]
    trees = [MerkleTree(leaves[i : i + width]) for i in range(0, width * (parts - 1), width)]
    trees.append(MerkleTree(leaves[width * (parts - 1) :]))
    joined = MerkleTree.join(trees)
    whole = MerkleTree(leaves)
    assert joined.size == whole.size
    assert joined.root() == whole.root() == root_from_leaf_hashes(leaves)
    for level in range(max(1, whole.size.bit_length())):
        assert joined.level_hashes(level, 0, whole.size) == whole.level_hashes(level, 0, whole.size)
    joined.extend([leaf_hash(b"more")])  # it goes on growing like any tree
    whole.extend([leaf_hash(b"more")])
    assert joined.root() == whole.root()


def test_join_refuses_misaligned_trees():
    a, b = MerkleTree([leaf_hash(b"a")] * 3), MerkleTree([leaf_hash(b"b")])
    with pytest.raises(ValueError, match="power-of-two"):
        MerkleTree.join([a, b])
