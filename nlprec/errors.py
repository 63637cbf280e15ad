"""The one exception type users see.

Every problem with user input (a file, a line, a value) is raised as `NlprecError` with a
single-line message that names what was wrong and what was expected. The CLI prints it as
`error: <message>` and exits with status 2; Python callers can catch it as a `ValueError`.
"""


class NlprecError(ValueError):
    """Bad input from the user: the message is one line naming the file, line or value."""


def require(checks: list[tuple[bool, str]]) -> None:
    """Raise `NlprecError` with the message of the first failed `(ok, message)` check."""
    for ok, message in checks:
        if not ok:
            raise NlprecError(message)
