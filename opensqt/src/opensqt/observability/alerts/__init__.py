"""Alerts: a router with de-duplication and rate limiting in front of HTTP sinks (webhook, Slack,
Telegram).  Sending never blocks nor breaks trading: each alert is sent in the background, a failed
send is logged (without the sink's URL or token) and counted.  See ``docs/risk.md``."""

from opensqt.observability.alerts.router import Alert, AlertRouter, build_router
from opensqt.observability.alerts.sinks import Sink, SlackSink, TelegramSink, WebhookSink

__all__ = ["Alert", "AlertRouter", "Sink", "SlackSink", "TelegramSink", "WebhookSink", "build_router"]
