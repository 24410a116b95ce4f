"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and their verification (SHA-256)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32

Node = tuple[int, int]
"""A complete subtree (level, index): it covers leaves [index * 2**level, (index + 1) * 2**level)."""
GetNode = Callable[[int, int], bytes]
Range = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """MTH({}) = SHA-256() — the root of the empty tree."""
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC definition; a reference for tests and verifiers."""
    if not hashes:
        return empty_root()
    level = list(hashes)
    while len(level) > 1:
        # Pairing left to right and carrying an odd last node up unchanged is the RFC
        # tree: its left subtrees are always perfect.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _range_nodes(lo: int, hi: int) -> list[Node]:
    """The complete subtrees, largest first, that tile the leaf range [lo, hi).

    Every subtree the RFC recursion visits starts at a multiple of a power of two at least
    as large as its size, so this is the binary decomposition of hi - lo.
    """
    nodes: list[Node] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):
            level -= 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes right to left: MTH of a range from its decomposition."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hash(r: Range, get: GetNode) -> bytes:
    return _fold([get(level, index) for level, index in _range_nodes(*r)])


def _plan(ranges: Iterable[Range]) -> list[Node]:
    seen: dict[Node, None] = {}
    for r in ranges:
        for node in _range_nodes(*r):
            seen.setdefault(node)
    return list(seen)


def root_nodes(size: int) -> list[Node]:
    """The perfect subtrees, left to right, whose hashes fold right to left into the root."""
    _check_size(size)
    return _range_nodes(0, size)


def root_from_nodes(size: int, get: GetNode) -> bytes:
    """MTH(D[size]) from stored complete-subtree hashes (see root_nodes)."""
    _check_size(size)
    return _range_hash((0, size), get) if size else empty_root()


def _inclusion_ranges(index: int, size: int) -> list[Range]:
    """Leaf ranges whose hashes form PATH(index, D[size]), leaf sibling first (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    lo, hi, out = 0, size, []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def inclusion_plan(index: int, size: int) -> list[Node]:
    """Every stored node inclusion_proof(index, size, get) will ask for, without duplicates."""
    return _plan(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, get: GetNode) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), the leaf's sibling first."""
    return [_range_hash(r, get) for r in _inclusion_ranges(index, size)]


def _consistency_ranges(old: int, new: int) -> list[Range]:
    """Leaf ranges whose hashes form PROOF(old, D[new]) = SUBPROOF(old, D[new], true) (RFC 9162 §2.1.4.1).

    Empty when old == new or old == 0: nothing needs proving.
    """
    if not 0 <= old <= new:
        raise ValueError(f"cannot prove consistency from size {old} to size {new}")
    if old in (0, new):
        return []
    lo, hi, m, whole = 0, new, old, True
    siblings: list[Range] = []
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    # SUBPROOF(m, D[m], b) is [] when b (the old tree is a left subtree the verifier
    # already has as its root) and [MTH(D[m])] otherwise.
    head = [] if whole else [(lo, hi)]
    return head + siblings[::-1]


def consistency_plan(old: int, new: int) -> list[Node]:
    """Every stored node consistency_proof(old, new, get) will ask for, without duplicates."""
    return _plan(_consistency_ranges(old, new))


def consistency_proof(old: int, new: int, get: GetNode) -> list[bytes]:
    """PROOF(old, D[new]) (RFC 9162 §2.1.4.1)."""
    return [_range_hash(r, get) for r in _consistency_ranges(old, new)]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step; False (never an exception) for any bad input."""
    if not (_is_size(index) and _is_size(size) and _is_hash(leaf_hash) and _is_hash(root)):
        return False
    if isinstance(proof, (bytes, str)) or not all(_is_hash(p) for p in proof):
        return False
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step; False (never an exception) for any bad input.

    The RFC algorithm covers 0 < old < new. Outside it: old == new needs an empty proof and
    equal roots; old == 0 needs an empty proof and old_root == SHA-256("") (every tree
    extends the empty one).
    """
    if not (_is_size(old) and _is_size(new) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if isinstance(proof, (bytes, str)) or not all(_is_hash(p) for p in proof):
        return False
    if old > new:
        return False
    if old == 0:
        return not proof and old_root == empty_root()
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def stored_node_count(size: int, from_level: int = 0) -> int:
    """Complete subtrees of a tree of `size` leaves at `from_level` and above (all of them,
    2n − popcount(n), from level 0)."""
    return sum(size >> level for level in range(from_level, size.bit_length()))


def nodes_completed_by_append(index: int) -> list[Node]:
    """The complete subtrees that leaf `index` completes, level 0 first: what a store inserts.

    Leaf i completes (level, (i + 1) // 2**level - 1) for every level up to the number of
    trailing zero bits of i + 1. Over n appends that is 2n - popcount(n) nodes in all.
    """
    if not _is_size(index):
        raise ValueError(f"leaf index must be a non-negative integer, not {index!r}")
    n = index + 1
    levels = (n & -n).bit_length()
    return [(level, (n >> level) - 1) for level in range(levels)]


def _check_size(size: int) -> None:
    if not _is_size(size):
        raise ValueError(f"tree size must be a non-negative integer, not {size!r}")


class MerkleTree:
    """An in-memory log of leaf hashes holding every complete subtree (for tests and verifiers)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # _levels[L] concatenates the hashes of the complete nodes at level L.
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; return its index."""
        self.extend((leaf_hash,))
        return self.size - 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, hashing each newly completed subtree once."""
        hashes = list(leaf_hashes)
        if not all(_is_hash(h) for h in hashes):
            raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
        self.extend_concatenated(b"".join(hashes))

    def extend_concatenated(self, leaf_hashes: bytes) -> None:
        """Append leaf hashes given as one byte string (32 bytes each), as `extend` does."""
        if len(leaf_hashes) % HASH_SIZE:
            raise ValueError(f"concatenated leaf hashes must be a multiple of {HASH_SIZE} bytes")
        self._levels[0] += leaf_hashes
        self._hash_up(0)

    @classmethod
    def join(cls, trees: Sequence[MerkleTree]) -> MerkleTree:
        """The tree of the trees' leaves one after another, reusing their nodes: every tree
        but the last must hold the same power-of-two number of leaves, 2**k, so that levels
        0..k line up; only the nodes above level k are hashed again."""
        joined = cls()
        if not trees:
            return joined
        width = trees[0].size
        if len(trees) > 1 and (any(t.size != width for t in trees[:-1]) or width & (width - 1)):
            raise ValueError("every tree but the last must have the same power-of-two size")
        top = width.bit_length() - 1 if len(trees) > 1 else len(trees[0]._levels) - 1
        joined._levels = [
            bytearray(b"".join(t._levels[level] for t in trees if level < len(t._levels)))
            for level in range(top + 1)
        ]
        joined._hash_up(top)
        return joined

    def _hash_up(self, level: int) -> None:
        """Hash the nodes completed above `level` (where every level up to it is complete)."""
        while True:
            below = self._levels[level]
            pairs = len(below) // (2 * HASH_SIZE)
            if pairs == 0:
                return
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            above = self._levels[level + 1]
            done = len(above) // HASH_SIZE
            if done == pairs:
                return
            sha256, width = hashlib.sha256, 2 * HASH_SIZE
            with memoryview(below) as view:  # node_hash, without copying the children
                for i in range(done, pairs):
                    above += sha256(b"\x01" + view[i * width : (i + 1) * width]).digest()
            level += 1

    def node(self, level: int, index: int) -> bytes:
        """The hash of complete subtree (level, index); ValueError if it is not complete."""
        if not (_is_size(level) and _is_size(index)) or level >= len(self._levels):
            raise ValueError(f"node ({level}, {index}) is not a complete subtree of this tree")
        row = self._levels[level]
        start = index * HASH_SIZE
        if start + HASH_SIZE > len(row):
            raise ValueError(f"node ({level}, {index}) is not a complete subtree of this tree")
        return bytes(row[start : start + HASH_SIZE])

    def level_hashes(self, level: int, start: int, stop: int) -> bytes:
        """The concatenated hashes of complete nodes (level, start) … (level, stop − 1) that exist."""
        if level >= len(self._levels):
            return b""
        return bytes(self._levels[level][start * HASH_SIZE : stop * HASH_SIZE])

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not _is_size(size) or size > self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        return root_from_nodes(self._size(size), self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size(size), self.node)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(old, self._size(new), self.node)
