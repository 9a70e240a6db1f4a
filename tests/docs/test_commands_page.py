from tests.docs.commands_page import PAGE, render


def test_the_commands_page_says_what_the_commands_say():
    assert PAGE.read_text() == render(), (
        "docs/commands.md is out of date: python -m tests.docs.commands_page"
    )
