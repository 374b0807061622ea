"""The SSH mirror fed the remote script's frames directly, for races a live host shows only
under load: what the local follower reads from the mirror folder is every line the host's
files held, once."""

from __future__ import annotations

import gzip

from audittui.ingest.follow import FileFollower
from audittui.ingest.remote.mirror import GONE_ROUNDS, Mirror


def lines(prefix: str, n: int) -> bytes:
    return b"".join(b'{"n":"%s-%d"}\n' % (prefix.encode(), k) for k in range(n))


class Host:
    """Sends frames as the script would: a listing, then each file from an offset."""

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror

    def round(self, files: dict[int, tuple[str, bytes]], sent: dict[int, int]) -> None:
        m = self.mirror
        m.listing([(ino, len(data), name) for ino, (name, data) in files.items()])
        for ino, (name, data) in files.items():
            start = 0 if name.endswith(".gz") else sent.get(ino, 0)
            if start >= len(data) and not name.endswith(".gz"):
                continue
            if name.endswith(".gz") and ino in sent:
                continue
            m.sink(ino, start)(data[start:])
            m.sent(ino, 0)
            sent[ino] = len(data)
        m.round_end()


def read_all(follower: FileFollower) -> list[bytes]:
    return [line for c in follower.poll() for line in c.data.splitlines()]


def test_a_gz_listed_after_the_wait_for_it_still_completes_the_file(tmp_path):
    """The live file is rotated, gzipped and removed on the host before its last lines are
    read, and its .gz is listed only after the mirror gave up waiting and rotated the local
    copy as it was: the lines only the .gz holds still reach the follower, and none twice."""
    folder, staging = tmp_path / "mirror", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    mirror = Mirror(str(folder), str(staging))
    host, sent = Host(mirror), {}
    first, rest, newer = lines("a", 50), lines("b", 30), lines("c", 20)

    host.round({1: ("audit.log", first)}, sent)
    follower = FileFollower(str(folder / "audit.log"))
    seen = read_all(follower)
    assert len(seen) == 50

    # On the host: 30 more lines, then rotated, gzipped and removed between two listings.
    for _ in range(GONE_ROUNDS + 1):
        host.round({2: ("audit.log", newer)}, sent)
        seen += read_all(follower)
    assert any("no copy of its end" in n for n in mirror.notes)
    assert len(seen) == 70  # the copy held and the new live file

    gz = gzip.compress(first + rest)
    host.round({2: ("audit.log", newer), 3: ("audit-2026-12-02T10-00-00.000.log.gz", gz)}, sent)
    seen += read_all(follower)
    seen += read_all(follower)

    expected = (first + rest + newer).splitlines()
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert any("came late" in n for n in mirror.notes)
    assert not list(folder.glob("*.gz"))  # the .gz is not shown beside its content
    mirror.close()


def test_a_late_gz_completes_a_line_whose_start_alone_was_read(tmp_path):
    """The host's file was read up to the middle of a line (the writer was writing it) when it
    was rotated, gzipped and removed: the copy shown as a backup keeps its whole lines, and the
    late .gz gives the cut line whole, once (the copy's half line and the .gz's other half were
    two broken lines before)."""
    folder, staging = tmp_path / "mirror", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    mirror = Mirror(str(folder), str(staging))
    host, sent = Host(mirror), {}
    whole = lines("a", 50) + lines("b", 30)
    cut = len(lines("a", 50)) + 7  # 7 bytes into the 51st line
    host.round({1: ("audit.log", whole[:cut])}, sent)
    follower = FileFollower(str(folder / "audit.log"))
    seen = read_all(follower)
    for _ in range(GONE_ROUNDS + 1):
        host.round({2: ("audit.log", lines("c", 20))}, sent)
        seen += read_all(follower)
    host.round(
        {2: ("audit.log", lines("c", 20)), 3: ("audit-2026-12-02T10-00-00.000.log.gz",
                                              gzip.compress(whole))},
        sent,
    )  # fmt: skip
    seen += read_all(follower)
    seen += read_all(follower)
    assert sorted(seen) == sorted((whole + lines("c", 20)).splitlines())
    for path in folder.iterdir():  # every line of every file shown is whole
        assert all(
            x.startswith(b'{"n":') and x.endswith(b"}") for x in path.read_bytes().split(b"\n")[:-1]
        )
    mirror.close()


def test_a_late_gz_of_another_file_is_shown_as_a_backup_of_its_own(tmp_path):
    """A .gz that is not the rest of the copy left incomplete (its start differs) is a backup
    like any other: shown, not merged."""
    folder, staging = tmp_path / "mirror", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    mirror = Mirror(str(folder), str(staging))
    host, sent = Host(mirror), {}
    host.round({1: ("audit.log", lines("a", 10))}, sent)
    for _ in range(GONE_ROUNDS + 1):
        host.round({2: ("audit.log", lines("c", 5))}, sent)
    other = gzip.compress(lines("z", 7))
    host.round(
        {2: ("audit.log", lines("c", 5)), 3: ("audit-2026-12-02T09-00-00.000.log.gz", other)}, sent
    )
    shown = sorted(p.name for p in folder.iterdir())
    assert "audit-2026-12-02T09-00-00.000.log.gz" in shown
    assert (folder / "audit-2026-12-02T09-00-00.000.log.gz").read_bytes() == other
    mirror.close()
