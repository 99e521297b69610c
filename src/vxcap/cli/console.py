"""The one terminal object: everything vxcap prints goes through these."""

from rich.console import Console
from rich.theme import Theme

_theme = Theme({"pass": "bold green", "fail": "bold red", "warn": "bold yellow", "stage": "dim cyan", "hint": "dim"})

# Off a terminal (CI logs, pipes) rich would fold tables at 80 columns; logs are wide.
_PIPE_WIDTH = 160

console = Console(theme=_theme, highlight=False)
if not console.is_terminal:
    console.width = _PIPE_WIDTH
err_console = Console(theme=_theme, stderr=True, highlight=False)


def error(message: str) -> None:
    err_console.print(f"[fail]error:[/] {message}", soft_wrap=True)


def progress(stage: str, detail: str) -> None:
    err_console.print(f"[stage]{stage:>9}[/] {detail}".rstrip(), soft_wrap=True)


def raw(text: str) -> None:
    """Machine output (JSON) as it is: no markup, no wrapping, no highlighting."""
    console.file.write(text + "\n")
    console.file.flush()
