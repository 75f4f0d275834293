from chatbot.dashboard import actions as operators
from chatbot.models import Template


def test_positional_placeholders_are_in_metas_order_not_the_texts():
    template = Template(name="t", language="pt_BR", components=[
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
        {"type": "BODY", "text": "Olá {{2}}, seu pedido {{1}} sai {{2}}"}])
    assert operators.template_placeholders(template) == [("header", "1"), ("body", "1"), ("body", "2")]


def test_named_placeholders_keep_the_texts_order():
    template = Template(name="t", language="pt_BR", parameter_format="NAMED",
                        components=[{"type": "BODY", "text": "{{nome}} e {{pedido}}"}])
    assert operators.template_placeholders(template) == [("body", "nome"), ("body", "pedido")]


def test_odd_components_are_skipped():
    assert operators.template_placeholders(Template(components={"type": "BODY"})) == []
    assert operators.template_placeholders(Template(components=["BODY", {"type": "BODY", "text": "{{1}}"}])) == [
        ("body", "1")]
