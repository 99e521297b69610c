"""`--help` that teaches: examples first, then the options grouped by what they are for.

click has no option groups; this is a small Command that formats its options by a
table of sections, and refuses options that do not apply where the run goes (the
embedded lab or a cluster) with a usage error naming the option (exit 2).
It imports click only, so `--help` stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from click.core import ParameterSource

OTHER = "Other options"


class GroupedCommand(click.Command):
    def __init__(
        self,
        *args,
        examples: str = "",
        sections: Sequence[tuple[str, Sequence[str]]] = (),
        lab_only: Sequence[str] = (),
        cluster_only: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.examples = examples.strip("\n")
        self.sections = tuple((title, tuple(names)) for title, names in sections)
        self.lab_only = tuple(lab_only)
        self.cluster_only = tuple(cluster_only)

    # -- help

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        if self.examples:
            with formatter.section("Examples"):
                for line in self.examples.splitlines():
                    formatter.write(" " * formatter.current_indent + line.rstrip() + "\n")
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                records[param.name] = record
        shown: set[str] = set()
        for title, names in self.sections:
            rows = [records[name] for name in names if name in records]
            shown.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [record for name, record in records.items() if name not in shown]
        if rest:
            with formatter.section(OTHER):
                formatter.write_dl(rest)

    # -- what applies where

    def invoke(self, ctx: click.Context):
        self.check_where(ctx)
        return super().invoke(ctx)

    def check_where(self, ctx: click.Context) -> None:
        lab = bool(ctx.params.get("lab"))
        wrong = self.cluster_only if lab else self.lab_only
        for name in wrong:
            if _given(ctx, name):
                option = _option_name(self, name)
                if lab:
                    raise click.UsageError(f"{option} is for a cluster; with --lab the run goes to the embedded lab", ctx)
                raise click.UsageError(f"{option} describes the embedded lab: add --lab, or leave {option} out", ctx)


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _option_name(command: click.Command, name: str) -> str:
    for param in command.params:
        if param.name == name and isinstance(param, click.Option):
            return max(param.opts, key=len)
    return name
