"""``python -m voxflow``: the same CLI as the ``voxflow`` command."""

from voxflow.cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    main(prog_name="voxflow")
