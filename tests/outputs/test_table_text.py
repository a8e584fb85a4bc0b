"""The table as text: names from the records are text in every format, never markup."""
from records import make_record

from harness.aggregate.table import build_table
from harness.outputs import table_text


def test_markdown_shows_html_and_pipes_in_names_as_text():
    hostile = "A|B <img src=x onerror=alert(1)>"
    records = [make_record("t1", "m1", s, 80.0 + s, display=hostile) for s in (1, 2)]
    table = build_table(records, "published", [("t1", "Task | <b>one</b>")], [("m1", hostile)])
    text = table_text.to_markdown(table)
    head, rule, row = text.splitlines()
    assert row.startswith("| A\\|B &lt;img src=x onerror=alert(1)&gt; |")
    assert "<img" not in text and "<b>" not in text and "Task \\| &lt;b&gt;one&lt;/b&gt;" in head
    # Unescaped pipes still make exactly the table's columns (Models, the task, Average) in every line.
    assert all(line.replace("\\|", "").count("|") == 4 for line in (head, rule, row))
    assert "Task \\| &lt;b&gt;one&lt;/b&gt;" in table_text.legend(table)  # the legend names the lone column
