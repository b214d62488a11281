import pytest

from pflow_metrics.runtime import templates


def test_a_lone_template_keeps_the_value_type():
    assert templates.resolve("${fetch.items}", {"fetch": {"items": [1, 2]}}) == [1, 2]


def test_templates_inside_text_render_dicts_as_json_and_strings_as_is():
    context = {"topic": "cats", "meta": {"n": 2}}
    assert templates.resolve("About ${topic}: ${meta}", context) == 'About cats: {"n": 2}'


def test_nested_params_and_list_indexes_resolve_and_are_recorded():
    context = {"fetch": {"items": [{"title": "first"}]}, "topic": "t"}
    resolutions = {}
    resolved = templates.resolve(
        {"a": ["${fetch.items.0.title}", {"b": "x ${topic}"}], "n": 3}, context, resolutions
    )
    assert resolved == {"a": ["first", {"b": "x t"}], "n": 3}
    assert resolutions == {"fetch.items.0.title": "first", "topic": "t"}


def test_a_missing_path_names_the_first_missing_segment():
    with pytest.raises(templates.TemplateError, match="'summarize.answer' is not in the shared store"):
        templates.resolve("${summarize.answer.text}", {"summarize": {"response": "r"}})


def test_references_report_where_each_template_sits():
    found = list(templates.references({"prompt": "${a} ${b.c}", "list": ["${d}"]}))
    assert found == [(".prompt", "a"), (".prompt", "b.c"), (".list[0]", "d")]


def test_text_without_templates_is_untouched():
    assert templates.resolve("cost is $5 {not a template}", {}) == "cost is $5 {not a template}"
