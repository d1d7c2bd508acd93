"""``ravine optimizers`` and ``ravine problems``: list the registries."""

from __future__ import annotations

from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ravine.commands.common import DebugOpt, console, guard


def optimizers(debug: DebugOpt = False) -> None:
    """List the registered optimizers: name, update rule and defaults."""

    def run() -> None:
        from ravine.optim import info, names

        table = Table(title="ravine optimizers", show_lines=True)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("rule  [dim](defaults)[/]", overflow="fold")
        table.add_column("step needs", no_wrap=True)
        for name in names():
            entry = info(name)
            label = name + (f"\n[dim]alias {', '.join(entry.aliases)}[/]" if entry.aliases else "")
            defaults = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
            needs = {"none": "gradient", "loss": "closure → loss", "graph": "closure → loss graph",
                     "residual": "closure → residuals"}[entry.closure]
            table.add_row(label, f"{entry.formula}\n[dim]{defaults}[/]", needs)
        console.print(table)

    guard(debug, run)


def problems(debug: DebugOpt = False) -> None:
    """List the named problems: data, model, loss and defaults."""

    def run() -> None:
        from ravine.problems import describe

        cols = ("name", "data", "model", "loss", "metric", "defaults")
        rows = [[str(row.get(col, "")) for col in cols] for row in describe()]
        # a column narrower than its longest word would break 'cross-entropy' or 'accuracy' mid-word;
        # below that width (80 columns, piped) each problem becomes a block of whole words instead
        words = [max(len(w) for r in [list(cols), *rows] for w in r[j].split() or [""]) for j in range(len(cols))]
        if sum(words) + 3 * len(cols) + 1 > console.width:
            console.print("ravine problems", highlight=False)
            for row in rows:
                console.print(escape(row[0]), style="bold cyan", highlight=False)
                line = " · ".join(f"{c}: {v}" for c, v in zip(cols[1:], row[1:], strict=True))
                console.print(Padding(Text(line), (0, 0, 0, 2)))
            return
        table = Table(title="ravine problems")
        for col in cols:
            table.add_column(col, style="bold cyan" if col == "name" else None, no_wrap=col == "name",
                             overflow="fold")
        for row in rows:
            table.add_row(*(escape(v) for v in row))
        console.print(table)

    guard(debug, run)


def schedules(debug: DebugOpt = False) -> None:
    """List the learning-rate and momentum schedules: name, formula and defaults."""

    def run() -> None:
        from ravine.schedules import info, names

        table = Table(title="ravine schedules", show_lines=True)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("formula  [dim](defaults)[/]", overflow="fold")
        table.add_column("sets / steps per", no_wrap=True)
        for name in names():
            entry = info(name)
            defaults = ", ".join(f"{k}={v}" for k, v in entry.defaults.items()) or "no hyperparameters"
            table.add_row(name, f"{entry.formula}\n[dim]{defaults}[/]", f"{entry.sets} / {entry.per}")
        console.print(table)

    guard(debug, run)
