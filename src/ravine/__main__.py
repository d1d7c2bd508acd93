"""``python -m ravine``: the same as the ``ravine`` console script."""

from ravine.cli import main

if __name__ == "__main__":
    main()
