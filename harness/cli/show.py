"""The commands that show records: `harness table`, `compare`, `plot` and `report`: their flags, passed to the
Python API (harness/api/views.py), and what they print."""
from __future__ import annotations

import sys


def cmd_table(args, argv) -> int:
    import harness.api as api

    if args.cost:
        sys.stdout.write(api.cost_table(args.results, format=args.format, variant=args.variant, output=args.output))
        return 0
    text = api.table(args.results, protocol=args.protocol, format=args.format, variant=args.variant,
                     suite=args.suite, metric=args.metric, normalized=args.normalized, group=args.group,
                     write=True, output=args.output)
    sys.stdout.write(text)
    return 0


def cmd_compare(args, argv) -> int:
    import harness.api as api

    print(api.compare(args.task, args.models[0], args.models[1], results=args.results, protocol=args.protocol,
                      variant=args.variant, metric=args.metric))
    return 0


def cmd_plot(args, argv) -> int:
    import harness.api as api

    print(api.plot(args.results, protocol=args.protocol, metric=args.metric, variant=args.variant,
                   suite=args.suite, group=args.group, output=args.output))
    return 0


def cmd_report(args, argv) -> int:
    import harness.api as api

    print(api.report(args.results, suite=args.suite, group=args.group, output=args.output))
    return 0
