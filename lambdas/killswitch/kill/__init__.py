"""Kill engine: read alerts (`alerts`), decide a level (`levels`), plan, act, record, restore."""
