"""``python -m voxflow``: the same CLI as the ``voxflow`` command."""

from voxflow.cli.main import cli

__all__: list[str] = []

if __name__ == "__main__":
    cli(prog_name="voxflow")
