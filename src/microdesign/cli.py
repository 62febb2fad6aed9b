"""The ``microdesign`` console command.

Sub-commands are discovered from :mod:`microdesign.commands`: every module there that defines
``NAME`` (the sub-command), ``HELP`` (one line), ``CONFIG_NAME`` (its root config in ``conf/``) and
``run(cfg) -> int`` becomes ``microdesign NAME [overrides...]``. A module may also define
``POSITIONAL = "<key>"``: one bare argument (no ``=``) is then read as ``<key>=<argument>``
(``microdesign report runs/x/campaign.h5``). Command modules keep heavy imports
inside ``run`` so that ``--help`` stays fast.

Usage::

    microdesign --help
    microdesign <command> [hydra.overrides ...] [--cfg] [--help]
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from dataclasses import dataclass
from types import ModuleType

from microdesign import __version__


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    config_name: str
    module: ModuleType


def discover_commands() -> dict[str, Command]:
    """All sub-commands found in :mod:`microdesign.commands`, keyed by name."""
    import microdesign.commands as package

    found: dict[str, Command] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if name is None:
            continue
        found[name] = Command(name, module.HELP, module.CONFIG_NAME, module)
    return dict(sorted(found.items()))


def _usage(commands: dict[str, Command]) -> str:
    width = max((len(n) for n in commands), default=8) + 2
    lines = [
        f"microdesign {__version__}: closed-loop design of Li-ion electrode microstructures",
        "",
        "usage: microdesign <command> [key=value ...] [--cfg] [--help]",
        "",
        "commands:",
    ]
    lines += [f"  {c.name:<{width}}{c.help}" for c in commands.values()]
    lines += [
        "",
        "Each command takes Hydra overrides, e.g. `microdesign campaign optimiser.q=4`.",
        "`--cfg` prints the resolved configuration and exits; `<command> --help` lists its config groups.",
    ]
    return "\n".join(lines)


def _command_help(command: Command) -> str:
    from microdesign.config import conf_dir

    root = conf_dir()
    groups = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    lines = [f"microdesign {command.name}: {command.help}", "", f"root config: conf/{command.config_name}.yaml"]
    doc = (command.module.__doc__ or "").strip()
    if doc:
        lines += ["", doc]
    lines += ["", "config groups (choose with group=option):"]
    for group in groups:
        options = sorted(p.stem for p in (root / group).glob("*.yaml") if not p.stem.startswith("_"))  # _base: shared keys
        lines.append(f"  {group}: {', '.join(options)}")
    return "\n".join(lines)


def configure_logging(level: int = logging.INFO) -> None:
    """Rich console logging for the command line (library code only uses ``logging``)."""
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[RichHandler(show_path=False)])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``microdesign`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = discover_commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(commands))
        return 0
    if argv[0] in ("-V", "--version"):
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"microdesign: unknown command {name!r}; expected one of {', '.join(commands)}", file=sys.stderr)
        return 2
    command = commands[name]
    if "-h" in rest or "--help" in rest:
        print(_command_help(command))
        return 0
    print_cfg = "--cfg" in rest
    overrides = [a for a in rest if a != "--cfg"]
    positional_key = getattr(command.module, "POSITIONAL", None)
    bare = [a for a in overrides if "=" not in a and not a.startswith("-")]
    if positional_key and len(bare) == 1:
        overrides = [f"{positional_key}={bare[0]}" if a == bare[0] else a for a in overrides]
    bad = [a for a in overrides if a.startswith("-")]
    if bad:
        print(f"microdesign {name}: unknown option(s) {bad}; overrides take the form key=value", file=sys.stderr)
        return 2

    from omegaconf import OmegaConf

    from microdesign.config import check_overrides, compose
    from microdesign.errors import ConfigError

    try:
        cfg = compose(command.config_name, overrides)
    except Exception as exc:  # Hydra composition errors carry a readable message
        print(f"microdesign {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        check_overrides(command.config_name, overrides)
    except ConfigError as exc:
        print(f"microdesign {name}: invalid input: {exc}", file=sys.stderr)
        return 2
    if print_cfg:
        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    configure_logging()
    try:
        return int(command.module.run(cfg) or 0)
    except Exception as exc:  # a ConfigError, possibly wrapped by hydra.utils.instantiate
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"microdesign {name}: invalid input: {cause}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
