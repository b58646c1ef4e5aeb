"""LandscapeBench leaderboard engine and task suites."""

__version__ = "0.1.0"
