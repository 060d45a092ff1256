"""Commands plugins add through ``register_commands``: listed by ``--help``, run like core's, loaded when needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from elspeth import ConfigError, hookimpl
from elspeth.cli import _commands, app
from elspeth_testing import plugin_module


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    @cli.command()
    def hello(name: str) -> None:
        """Say hello to NAME."""
        if name == "nobody":
            raise ConfigError("hello: NAME 'nobody' is nobody (choose a name)")
        typer.echo(f"hello {name}")
        raise typer.Exit(3 if name == "three" else 0)


@hookimpl(specname="register_commands")
def raising(cli: typer.Typer) -> None:
    raise RuntimeError("the hook broke")


@hookimpl(specname="register_commands")
def shadowing(cli: typer.Typer) -> None:
    @cli.command()
    def run() -> None:
        """A plugin's own `run`."""
        typer.echo("the plugin's run")


HELLO = plugin_module("hello_commands", register_commands)


def source(module: ModuleType | Callable[[], object], label: str = "hello", dist: str = "elspeth-hello") -> object:
    load = module if callable(module) and not isinstance(module, ModuleType) else (lambda: module)
    return _commands.CommandSource(label, dist, load)


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[object]]:
    """Replace the ``elspeth.commands`` entry points with the given modules; returns the calls made."""
    calls: list[object] = []

    def use(*items: object) -> list[object]:
        def found() -> list[object]:
            calls.append("read")
            return list(items)

        monkeypatch.setattr(_commands, "command_sources", found)
        return calls

    return use


def test_a_plugin_command_is_listed_by_help_and_runs(sources: Callable[..., list[object]]) -> None:
    sources(source(HELLO))
    listing = CliRunner().invoke(app, ["--help"])
    assert listing.exit_code == 0
    assert "hello" in listing.stdout
    assert "Say hello to NAME." in listing.stdout
    assert "run " in listing.stdout, "core's commands are listed beside it"
    done = CliRunner().invoke(app, ["hello", "ann"])
    assert (done.exit_code, done.stdout) == (0, "hello ann\n")
    assert CliRunner().invoke(app, ["hello", "three"]).exit_code == 3, "a command's own exit code passes through"


def test_an_elspeth_error_in_a_plugin_command_is_a_message_and_its_exit_code(
    sources: Callable[..., list[object]],
) -> None:
    sources(source(HELLO))
    done = CliRunner().invoke(app, ["hello", "nobody"])
    assert done.exit_code == 2
    assert done.stderr == "error: hello: NAME 'nobody' is nobody (choose a name)\n"
    assert "Traceback" not in done.output


def test_core_commands_never_read_the_commands_entry_points(
    sources: Callable[..., list[object]], tmp_path: Path
) -> None:
    calls = sources(source(HELLO))
    done = CliRunner().invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert done.exit_code == 2
    assert CliRunner().invoke(app, ["plugins", "--help"]).exit_code == 0
    assert calls == []
    CliRunner().invoke(app, ["hello", "ann"])
    assert calls == ["read"]


def test_a_broken_plugin_costs_only_its_own_commands_and_is_named(sources: Callable[..., list[object]]) -> None:
    def fails_to_import() -> object:
        raise ImportError("No module named 'elspeth_gone'")

    sources(
        source(fails_to_import, "gone", "elspeth-gone"),
        source(plugin_module("raising_commands", raising), "raising", "elspeth-raising"),
        source(HELLO),
    )
    done = CliRunner().invoke(app, ["hello", "ann"])
    assert done.exit_code == 0, done.output
    assert done.stdout == "hello ann\n"
    assert (
        "warning: commands of elspeth-gone (entry point 'gone') not loaded: ImportError: No module named 'elspeth_gone'"
        in done.stderr
    )
    assert "warning: commands of elspeth-raising (entry point 'raising') not added: RuntimeError: the hook broke" in (
        done.stderr
    )


def test_a_plugin_command_named_like_a_core_command_is_ignored_with_a_warning(
    sources: Callable[..., list[object]], tmp_path: Path
) -> None:
    sources(source(plugin_module("shadow_commands", shadowing), "shadow", "elspeth-shadow"))
    done = CliRunner().invoke(app, ["--help"])
    assert "a plugin's command 'run' is ignored: it is one of elspeth's own commands" in done.stderr
    assert "A plugin's own" not in done.stdout


def test_disabled_plugins_add_no_command(sources: Callable[..., list[object]], monkeypatch: pytest.MonkeyPatch) -> None:
    sources(source(HELLO))
    done = CliRunner().invoke(app, ["--disable-plugin", "elspeth-hello", "hello", "ann"])
    assert done.exit_code == 2
    assert "No such command 'hello'" in done.output
    monkeypatch.setenv("ELSPETH_LOAD_PLUGINS", "someone-else")
    assert CliRunner().invoke(app, ["hello", "ann"]).exit_code == 2
    monkeypatch.setenv("ELSPETH_LOAD_PLUGINS", "hello")
    assert CliRunner().invoke(app, ["hello", "ann"]).stdout == "hello ann\n"
