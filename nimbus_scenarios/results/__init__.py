"""The results of a run: the typed document (`model`), JSON on disk (`io`, through `codec`),
and how a run's records become a document (`build`)."""
