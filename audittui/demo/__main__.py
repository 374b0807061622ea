"""``python -m audittui.demo``: write demo logs (see :func:`main`)."""

from . import main

raise SystemExit(main())
