"""The private RabbitMQ runner: its own user and vhost, and nothing left after a stop."""

from __future__ import annotations

import os
import uuid

import amqp.exceptions
import kombu
import pytest

from dvr_agent.lab.rabbitmq import BrokerError, RabbitMQNode

PASSWORD = "s3cret/with:odd@chars"  # quoted into the URL


def _kombu(url: str) -> kombu.Connection:
    return kombu.Connection(url.replace("rabbit://", "amqp://", 1), connect_timeout=5)


def test_a_private_user_works_on_its_own_vhost_only(rabbitmq):
    user = f"dvr-{uuid.uuid4().hex[:6]}"
    url = rabbitmq.add_user(user, PASSWORD, f"/{user}")
    assert url == rabbitmq.url(user, PASSWORD, f"/{user}")
    with _kombu(url) as conn:
        queue = conn.SimpleQueue(f"q-{user}")
        queue.put({"hello": user})
        assert queue.get(timeout=5).payload == {"hello": user}
        queue.close()
    with pytest.raises(amqp.exceptions.NotAllowed), _kombu(rabbitmq.url(user, PASSWORD)) as c:
        c.connect()


def test_stop_leaves_no_process_port_or_directory_behind():
    node = RabbitMQNode().start()
    base = node.base_dir
    node.ctl("status")
    node.stop()
    assert not os.path.exists(base)
    with pytest.raises(BrokerError):
        node.ctl("status", timeout=5)
