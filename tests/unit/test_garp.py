"""The gratuitous ARP sender: its frames byte for byte, and its schedule (N rounds, an
interval apart, never blocking the caller), with the sending replaced by a recorder.
The real sockets in real namespaces are tested in tests/functional/test_garp.py.
"""

from __future__ import annotations

import itertools
import threading
import time

from dvr_agent.drivers.garp import GarpSender, garp_frames

MAC = bytes.fromhex("fa163e000001")


def test_frames_are_a_broadcast_request_and_reply_with_sender_equal_target():
    request, reply = garp_frames(MAC, "203.0.113.7")
    for frame, op in ((request, 1), (reply, 2)):
        assert len(frame) == 42
        assert frame[:6] == b"\xff" * 6 and frame[6:12] == MAC and frame[12:14] == b"\x08\x06"
        assert frame[14:22] == bytes([0, 1, 8, 0, 6, 4, 0, op])
        assert frame[22:28] == MAC and frame[28:32] == bytes([203, 0, 113, 7])
        assert frame[38:42] == bytes([203, 0, 113, 7])  # target = sender: gratuitous
    assert request[32:38] == b"\x00" * 6 and reply[32:38] == MAC


class Recorder:
    def __init__(self) -> None:
        self.rounds: list[tuple[float, str, list[tuple[str, str]]]] = []
        self.done = threading.Event()
        self.expected = 0

    def __call__(self, namespace, items):
        self.rounds.append((time.monotonic(), namespace, list(items)))
        if sum(len(i) for _, _, i in self.rounds) >= self.expected:
            self.done.set()
        return [(d, ip, "gone") for d, ip in items if d == "gone-dev"]


def test_each_address_is_announced_count_times_an_interval_apart_grouped_by_namespace():
    record = Recorder()
    record.expected = 9
    sender = GarpSender(count=3, interval=0.05, send=record)
    sender.start()
    try:
        started = time.monotonic()
        sender.announce([("fip-e", "fg-1", "203.0.113.7"), ("fip-e", "fg-1", "203.0.113.8"),
                         ("snat-r", "gone-dev", "203.0.113.2")])
        assert time.monotonic() - started < 0.05, "announce only queues"
        assert record.done.wait(10)
    finally:
        sender.stop()
    by_ns = {}
    for at, namespace, items in record.rounds:
        by_ns.setdefault(namespace, []).append((at, items))
    assert [items for _, items in by_ns["fip-e"]] == [
        [("fg-1", "203.0.113.7"), ("fg-1", "203.0.113.8")]] * 3
    times = [at for at, _ in by_ns["fip-e"]]
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(times))
    assert (sender.sent, sender.failed) == (6, 3) and sender.pending() == 0


def test_announcing_again_restarts_the_rounds_instead_of_doubling_them():
    record = Recorder()
    record.expected = 10**6  # never "done": the test reads the rounds after a pause
    sender = GarpSender(count=2, interval=0.2, send=record)
    sender.start()
    try:
        target = ("fip-e", "fg-1", "203.0.113.7")
        sender.announce([target])
        time.sleep(0.1)
        sender.announce([target])
        deadline = time.monotonic() + 10
        while sender.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert len(record.rounds) == 3, "1 of the first announcement + 2 of the second"


def test_an_address_announced_from_another_device_is_no_longer_sent_from_the_old_one():
    """A host's fg- replaced by a new gateway port's device in the same fip namespace: the
    old device's remaining rounds would move the upstream's entry back to the old MAC."""
    record = Recorder()
    record.expected = 10**6
    sender = GarpSender(count=3, interval=0.2, send=record)
    sender.start()
    try:
        sender.announce([("fip-e", "fg-old", "203.0.113.7"), ("fip-e", "fg-old", "203.0.113.8"),
                         ("qrouter-r", "qr-1", "203.0.113.7")])  # another namespace: stays
        time.sleep(0.1)
        sender.announce([("fip-e", "fg-new", "203.0.113.7")])
        deadline = time.monotonic() + 10
        while sender.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    sent = [(ns, item) for _, ns, items in record.rounds for item in items]
    assert sent.count(("fip-e", ("fg-old", "203.0.113.7"))) == 1, "only the round before"
    assert sent.count(("fip-e", ("fg-new", "203.0.113.7"))) == 3
    assert sent.count(("fip-e", ("fg-old", "203.0.113.8"))) == 3, "other addresses stay"
    assert sent.count(("qrouter-r", ("qr-1", "203.0.113.7"))) == 3


def test_stop_ends_a_round_between_namespaces():
    """After a cold sync one round spans every router's namespace (seconds at 1,000): an
    agent told to stop must not wait for the rest of it."""
    started = threading.Event()

    def slow(namespace, items):
        started.set()
        time.sleep(0.2)
        return []

    sender = GarpSender(count=1, interval=1, send=slow)
    sender.start()
    sender.announce([(f"qrouter-{i}", "qr-1", "10.0.0.1") for i in range(100)])
    assert started.wait(5)
    began = time.monotonic()
    sender.stop()
    assert time.monotonic() - began < 1.0, "stop waited for the whole round"
    assert sender.sent < 10


def test_zero_count_disables_announcements():
    record = Recorder()
    sender = GarpSender(count=0, interval=0.01, send=record)
    sender.announce([("fip-e", "fg-1", "203.0.113.7")])
    assert sender.pending() == 0 and record.rounds == []
