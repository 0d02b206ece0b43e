"""Scheduling: time-driven work behind `cron_playbooks`."""
