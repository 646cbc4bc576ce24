"""`python -m exporter` is the same as the `modelarts-exporter` console script."""

from exporter.cli import main

raise SystemExit(main())
