from django.db import migrations


def move_answers(apps, schema_editor):
    """The answers a flow collected were kept in `bot_state["answers"]`, where the conversation page
    never looked; they belong in `data` ("collected answers"), which the page shows."""
    Session = apps.get_model("chatbot", "Session")
    for session in Session.objects.filter(bot_state__has_key="answers").iterator():
        answers = session.bot_state.pop("answers")
        if isinstance(answers, dict):
            session.data = {**(session.data if isinstance(session.data, dict) else {}), **answers}
        session.save(update_fields=["bot_state", "data"])


class Migration(migrations.Migration):
    dependencies = [("chatbot", "0003_department_restricted_token_scopes")]

    operations = [migrations.RunPython(move_answers, migrations.RunPython.noop)]
