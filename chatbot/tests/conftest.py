import pytest


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    # Hashed static names need `collectstatic`; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    # Each test configures its own bot: nothing cached from the one before.
    from chatbot import conversation

    conversation._config_cache["at"] = float("-inf")


@pytest.fixture
def run_tasks(db):
    """Apply stored webhook events, run every ready task and send what they queued, as `db_worker` would."""
    from unittest import mock

    from django.utils import timezone
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    from chatbot import inbound, outbound

    def run():
        inbound.drain(limit=None)
        # Inside a test's transaction nothing commits, so the on-commit turn never runs: the
        # conversation's safety-net task does the work, now rather than after its delay.
        DBTaskResult.objects.filter(task_path="chatbot.tasks.handle_inbound_message").update(
            run_after=timezone.now()
        )
        # The worker closes "old" connections between tasks; inside a test's transaction that
        # would close the test's own connection.
        with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
            Worker(
                queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
            ).run()
        while outbound.drain():
            pass

    return run


@pytest.fixture
def fake_graph(settings):
    """A fake Graph API on 127.0.0.1 (fake_graph.py) that chatbot/graph.py talks to over real HTTP."""
    from chatbot.tests.fake_graph import FakeGraph

    with FakeGraph(version=settings.WHATSAPP_API_VERSION) as fake:
        settings.WHATSAPP_GRAPH_URL = fake.url
        settings.WHATSAPP_ACCESS_TOKEN = fake.token
        yield fake
