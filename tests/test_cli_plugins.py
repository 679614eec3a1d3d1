"""Feature packages register their commands; the table that loads them lazily must name them all."""

from __future__ import annotations

import importlib

import click

from parvis.cli import FEATURE_COMMANDS


def test_every_feature_command_is_declared_for_lazy_loading() -> None:
    for module_name, declared in FEATURE_COMMANDS.items():
        group = click.Group("parvis")
        group.add_command(click.Group("members"))
        importlib.import_module(module_name).register(group)
        added = {name for name in group.commands if name != "members"}
        if group.commands["members"].commands:  # type: ignore[attr-defined]
            added.add("members")
        assert added == set(declared), module_name
