"""``python -m bench.pipeline``: see the package docstring."""

from bench.pipeline.cli import main

if __name__ == "__main__":
    main()
