"""The JSON tree widget (audittui.tui.json_tree) in a real Textual app: log text is shown
literally and inertly on one line per node, and big events stay small until opened."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual.app import App, ComposeResult

from audittui.tui.json_tree import KEY, LITERAL, MAX_NODES, NUMBER, STRING, JsonTree


class TreeApp(App):
    def compose(self) -> ComposeResult:
        yield JsonTree(id="t")


Check = Callable[[JsonTree, object], Awaitable[None]]


def run(value: object, check: Check, **show: object) -> None:
    async def main() -> None:
        app = TreeApp()
        async with app.run_test(size=(80, 24)) as pilot:
            tree = app.query_one(JsonTree)
            tree.show(value, **show)
            await pilot.pause()
            await check(tree, pilot)

    asyncio.run(main())


def nodes(node) -> list:
    """Every node under ``node`` (built so far), depth first."""
    out = []
    for child in node.children:
        out.append(child)
        out.extend(nodes(child))
    return out


def child(node, key: str):
    """The child of ``node`` whose label starts with the JSON-quoted ``key``."""
    return next(c for c in node.children if c.label.plain.startswith(f'"{key}"'))


def screen_lines(tree: JsonTree) -> list[str]:
    return [tree.render_line(y).text for y in range(tree.size.height)]


HOSTILE = {
    "user": {"username": "[bold]x[/bold]", "groups": ["[link=https://evil.example]g[/link]"]},
    "userAgent": "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07click\x1b]8;;\x07",
    "[red]key\u202e": "gnp.exe\u202e",
    "multi": "first\nsecond\r\tthird",
}


def test_log_text_is_literal_and_inert_in_labels_and_on_screen():
    async def check(tree, pilot):
        everything = nodes(tree.root)
        assert all(isinstance(n.label, Text) for n in everything)
        text = "\n".join(n.label.plain for n in everything)
        assert '"username": "[bold]x[/bold]"' in text
        assert "[link=https://evil.example]g[/link]" in text
        assert "\\u001b[31m" in text and "\\u001b]8;;https://evil.example" in text
        assert "\\u0007" in text
        assert '"[red]key' in text and "gnp.exe" in text and "\\u202e" in text
        assert not any(c in text for c in "\x1b\x07\u202e\r\t")
        # A Tree label keeps only its first line: a newline must not cut the value short.
        multi = child(tree.root, "multi").label.plain
        assert "first" in multi and "second" in multi and "third" in multi
        assert "\n" not in multi
        # Only the widget's own styles: nothing in the text turned into markup or links.
        styles = {KEY, STRING, NUMBER, LITERAL, "dim", ""}
        for n in everything:
            assert {str(s.style) for s in n.label.spans} <= styles, n.label.spans
            assert not any(s.style.link for s in n.label.spans if not isinstance(s.style, str))
        shown = "\n".join(screen_lines(tree))
        assert '"[bold]x[/bold]"' in shown and "\x1b" not in shown

    run(HOSTILE, check)


def test_scalars_are_json_and_coloured_by_type():
    value = {"s": "text", "i": 42, "f": 1.5, "t": True, "F": False, "n": None, "e": ""}

    async def check(tree, pilot):
        got = {n.label.plain: n.label for n in tree.root.children}
        assert set(got) == {
            '"s": "text"',
            '"i": 42',
            '"f": 1.5',
            '"t": true',
            '"F": false',
            '"n": null',
            '"e": ""',
        }

        def value_style(plain: str) -> str:
            label = got[plain]
            return str(label.spans[-1].style)

        assert str(got['"s": "text"'].spans[0].style) == KEY
        assert value_style('"s": "text"') == STRING
        assert value_style('"i": 42') == value_style('"f": 1.5') == NUMBER
        assert value_style('"t": true') == value_style('"n": null') == LITERAL
        assert len({KEY, STRING, NUMBER, LITERAL}) == 4

    run(value, check)


def test_containers_are_summarised_and_the_root_is_hidden():
    value = {
        "metadata": {"name": "a", "labels": {"x": "y"}},
        "items": [1, 2, 3],
        "empty": {},
        "none": [],
    }

    async def check(tree, pilot):
        assert tree.show_root is False and tree.guide_depth == 2
        first = screen_lines(tree)[0]
        assert '"metadata": {…} 2 keys' in first  # top-level keys are the first lines
        plain = [n.label.plain for n in tree.root.children]
        assert plain[1] == '"items": […] 3 items'
        assert child(tree.root, "empty").allow_expand is False
        assert child(tree.root, "none").allow_expand is False
        items = child(tree.root, "items")
        assert [c.label.plain for c in items.children] == ["0: 1", "1: 2", "2: 3"]

    run(value, check)


def test_top_level_lists_and_nothing():
    async def check(tree, pilot):
        assert [n.label.plain for n in tree.root.children][:2] == ['0: "a"', "1: {…} 1 keys"]
        tree.show(None)
        await pilot.pause()
        assert len(tree.root.children) == 0

    run(["a", {"b": 1}], check)


def test_hidden_keys_at_any_depth_and_shown_on_request():
    value = {
        "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]},
        "responseObject": {"items": [{"metadata": {"managedFields": [{"manager": "kcm"}]}}]},
    }

    async def check(tree, pilot):
        text = "\n".join(n.label.plain for n in nodes(tree.root))
        assert text.count('"managedFields": … hidden (m shows)') == 2
        assert "kubectl" not in text and "kcm" not in text
        hidden = child(child(tree.root, "metadata"), "managedFields")
        assert hidden.allow_expand is False and len(hidden.children) == 0
        tree.show(value, hide=frozenset())
        await pilot.pause()
        text = "\n".join(n.label.plain for n in nodes(tree.root))
        assert "hidden" not in text and '"manager": "kubectl"' in text
        assert text.count('"managedFields": […] 1 items') == 2

    run(value, check)


def test_long_strings_are_cut():
    value = {"short": "y" * 2000, "long": "z" * 3000, "escapes": "\x1b" * 2500}

    async def check(tree, pilot):
        short, long, escapes = (n.label.plain for n in tree.root.children)
        assert short == '"short": "' + "y" * 2000 + '"'
        assert "z" * 2000 in long and "z" * 2001 not in long and len(long) < 2100
        assert "(3,000 chars)" in long
        # 2,000 characters of inert text, each escape shown as JSON would quote it
        assert len(escapes) < 5000 and "(2,500 chars)" in escapes

    run(value, check)


def test_default_expansion_stops_at_depth_four_and_opens_lazily():
    value = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}

    async def check(tree, pilot):
        a = child(tree.root, "a")
        b = child(a, "b")
        c = child(b, "c")
        d = child(c, "d")
        e = child(d, "e")
        assert all(n.is_expanded for n in (a, b, c, d))
        assert not e.is_expanded and e.allow_expand and len(e.children) == 0  # built when opened
        tree.focus()
        tree.move_cursor(e)
        await pilot.press("space")
        await pilot.pause()
        assert e.is_expanded
        f = child(e, "f")
        assert f.label.plain == '"f": {…} 1 keys'
        await pilot.press("down", "enter")  # enter opens too
        await pilot.pause()
        assert [n.label.plain for n in f.children] == ['"g": 1']

    run(value, check)


def test_arrays_of_more_than_a_hundred_items_start_folded():
    value = {"hundred": list(range(100)), "more": list(range(101))}

    async def check(tree, pilot):
        hundred, more = child(tree.root, "hundred"), child(tree.root, "more")
        assert hundred.is_expanded and len(hundred.children) == 100
        assert not more.is_expanded and len(more.children) == 0
        assert more.label.plain == '"more": […] 101 items'

    run(value, check)


def test_wide_objects_start_folded_and_are_built_when_opened():
    value = {"requestObject": {"data": {f"k{i}": i for i in range(20_000)}}}

    async def check(tree, pilot):
        data = child(child(tree.root, "requestObject"), "data")
        assert not data.is_expanded and len(data.children) == 0  # nothing built yet
        data.expand()
        await pilot.pause()
        assert len(data.children) == 20_000

    run(value, check)


def pod(i: int) -> dict:
    """A Pod about as wide as real ones: some 30 nodes two levels down."""
    return {
        "metadata": {
            "name": f"web-{i}",
            "generateName": "web-",
            "namespace": "prod",
            "uid": f"uid-{i}",
            "resourceVersion": str(1000 + i),
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "abc"},
            "annotations": {"kubernetes.io/psp": "restricted"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc"}],
            "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {
            "containers": [{"name": "web", "image": "nginx"}],
            "volumes": [{"name": "token"}],
            "nodeName": "node-1",
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "hostIP": "10.0.0.1",
            "podIP": f"10.1.0.{i % 250}",
            "startTime": "2024-05-01T10:00:01Z",
            "qosClass": "BestEffort",
        },
    }


def test_a_huge_event_stays_within_the_node_budget():
    # 100 pods: the list itself opens (≤ 100 items), so the budget is what stops expansion.
    value = {
        "kind": "Event",
        "responseObject": {"kind": "PodList", "items": [pod(i) for i in range(100)]},
    }

    async def check(tree, pilot):
        built = nodes(tree.root)
        assert MAX_NODES // 2 < len(built) <= MAX_NODES + 200
        items = child(child(tree.root, "responseObject"), "items")
        assert items.is_expanded and len(items.children) == 100
        assert items.children[0].is_expanded and not items.children[-1].is_expanded
        assert len(items.children[-1].children) == 0
        # 5,000 pods: the list starts folded and nothing below it is built.
        tree.show({"responseObject": {"items": [pod(i) for i in range(5000)]}})
        await pilot.pause()
        assert len(nodes(tree.root)) == 2

    run(value, check)


def test_showing_again_replaces_everything():
    async def check(tree, pilot):
        tree.show({"second": True})
        await pilot.pause()
        assert [n.label.plain for n in nodes(tree.root)] == ['"second": true']

    run({"first": {"a": [1, 2]}}, check)


def test_z_folds_everything_then_opens_the_top_level():
    value = {"metadata": {"labels": {"a": "b"}}, "spec": {"x": [1]}, "kind": "Pod"}

    async def check(tree, pilot):
        meta, spec = child(tree.root, "metadata"), child(tree.root, "spec")
        labels = child(meta, "labels")
        assert meta.is_expanded and spec.is_expanded and labels.is_expanded
        tree.focus()
        await pilot.press("z")
        assert not meta.is_expanded and not spec.is_expanded and not labels.is_expanded
        await pilot.press("z")
        assert meta.is_expanded and spec.is_expanded and not labels.is_expanded

    run(value, check)
