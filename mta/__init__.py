"""Drive a real MTA: its logs become telemetry records, decisions become its configuration.

- :mod:`~ipwarmup.mta.postfix_log` and :mod:`~ipwarmup.mta.kumomta_log` read delivery
  events from a Postfix log (syslog or ``maillog_file``) or KumoMTA's JSON log records;
- :mod:`~ipwarmup.mta.telemetry` turns the events into one telemetry record per period,
  each valid for ``ServedPolicy.decide``;
- :mod:`~ipwarmup.mta.shadow` replays a log beside the fixed-sendgrid schedule;
- :mod:`~ipwarmup.mta.postfix_config` and :mod:`~ipwarmup.mta.kumomta_config` write the
  decided caps into each MTA's configuration, and :mod:`~ipwarmup.mta.control` runs the
  loop with an offset that survives log rotation.

Facts and formats: ``shared/MTA.md``; the sources are cited where each is used.
"""
