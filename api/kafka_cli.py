"""``accord relay`` and ``accord alerts tail``: the Kafka side of the command line.

``accord relay`` follows the log and publishes alerts and per-agency feeds to Kafka until
SIGINT/SIGTERM (``infra.relay``); it needs ``ACCORD_KAFKA_BOOTSTRAP``. ``accord alerts
tail --agency A`` is a plain kafka-python consumer a safeguarding team can run, or copy:
one JSON line per message, each message id once.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any

from api.bootstrap import RelayOptions, bootstrap
from infra.relay import KafkaNotConfigured, alerts_topic, feed_topic, tail
from infra.settings import Settings

COMMANDS = ("relay", "alerts")


def add_parser(commands: Any) -> None:
    relay = commands.add_parser(
        "relay", help="publish alerts and per-agency feeds to Kafka (needs ACCORD_KAFKA_BOOTSTRAP)")
    relay.add_argument("--topic-prefix", default="accord",
                       help="topics are PREFIX.alerts.<agency> and PREFIX.feed.<agency>")
    relay.add_argument("--batch-size", type=int, default=500, help="messages per batch")
    relay.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    relay.add_argument("--no-feed", action="store_true", help="publish alerts only")

    alerts = commands.add_parser("alerts", help="safeguarding alerts on Kafka")
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail_ = actions.add_parser("tail", help="print an agency's alerts, one JSON line each")
    tail_.add_argument("--agency", required=True)
    tail_.add_argument("--group", help="consumer group: commit offsets, resume after them")
    tail_.add_argument("--from-beginning", action="store_true",
                       help="start at the oldest message (default: new messages only)")
    tail_.add_argument("--feed", action="store_true",
                       help="also the agency's feed of facts entering and leaving its view")
    tail_.add_argument("--topic-prefix", default="accord")
    tail_.add_argument("--bootstrap", help="default ACCORD_KAFKA_BOOTSTRAP")
    tail_.add_argument("--idle-exit", type=float,
                       help="exit after this many seconds without a message")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "relay":
        return _relay(settings, args)
    return _tail(settings, args)


def _relay(settings: Settings, args: argparse.Namespace) -> int:
    accord = bootstrap(settings, read_models=False, relay=RelayOptions(
        prefix=args.topic_prefix, batch_size=args.batch_size, poll_interval=args.poll,
        feed=not args.no_feed))
    try:
        relay = accord.relay
        assert relay is not None  # asked for (KafkaNotConfigured without a bootstrap)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: relay.stop_soon())
        print(f"relay: publishing to {settings.kafka_bootstrap} from position "
              f"{relay.position()} (feed from {relay.feed_position()})", flush=True)
        relay.run()  # in the foreground: this process does nothing else
        relay.close()
        print(f"relay: stopped at position {relay.position()}; {relay.stats.published} "
              f"messages published, {relay.stats.failures} failed attempts", flush=True)
        return 0
    finally:
        accord.close()


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    if not bootstrap:
        raise KafkaNotConfigured("set ACCORD_KAFKA_BOOTSTRAP or pass --bootstrap")
    topics = [alerts_topic(args.topic_prefix, args.agency)]
    if args.feed:
        topics.append(feed_topic(args.topic_prefix, args.agency))
    with contextlib.suppress(KeyboardInterrupt):
        tail(bootstrap, topics, sys.stdout, group=args.group,
             from_beginning=args.from_beginning, idle_exit=args.idle_exit)
    return 0
