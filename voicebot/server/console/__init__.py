"""The web console at /console/ (docs/console.md): live calls, history with audio and a
timeline, scripts' flows with per-state counts, campaigns and health, for people to look at."""
