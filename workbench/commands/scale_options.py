"""Options shared by the commands that run at paper scale: ``--plan``, ``--distributed``, ``--chunk``,
``--api-concurrency``, ``--api-rps``.

One place for the flags and for starting / stopping a ``torchrun`` run, so every command that
extracts spells them the same way (see :mod:`workbench.distributed` and :mod:`workbench.plan`).
"""

from __future__ import annotations


def add_plan_option(parser) -> None:
    parser.add_argument("--plan", action="store_true",
                        help="print what the run would cost (generations, judge calls, tokens, memory, time) and stop")


def add_distributed_options(parser) -> None:
    parser.add_argument("--distributed", action="store_true",
                        help="shard extraction over torchrun ranks: torchrun --nproc-per-node N -m workbench ... --distributed")
    parser.add_argument("--chunk", type=int, default=256,
                        help="sequences per extraction chunk, the unit of sharding and resuming (default 256)")


def add_scale_options(parser) -> None:
    add_plan_option(parser)
    add_distributed_options(parser)
    parser.add_argument("--api-concurrency", type=int, default=8,
                        help="requests in flight to the generation / judge endpoint (default 8; e.g. 64 for vLLM)")
    parser.add_argument("--api-rps", type=float, default=10.0,
                        help="request rate limit per second (default 10, for hosted APIs; raise it for a local vLLM)")


def api_overrides(args) -> dict:
    """The :class:`workbench.api.ApiConfig` fields the scale options set."""
    return {"max_concurrency": args.api_concurrency, "requests_per_second": args.api_rps}


def start(args):
    """(shard, device) for this process: a torchrun rank with ``--distributed``, else the single process."""
    from workbench.distributed import SINGLE, start as start_distributed

    if args.distributed:
        return start_distributed(args.device)
    return SINGLE, args.device


def stop(shard) -> None:
    from workbench.distributed import stop as stop_distributed

    stop_distributed(shard)
