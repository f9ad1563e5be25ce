"""file-age: a problem when a heartbeat file has not been touched for too long."""

import os
import time

from healthcheck import Checker, Condition, Option, Result, hookimpl


def check(ctx):
    path, max_age = ctx.options.path, ctx.options.max_age
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return Result.problem(f"{path} does not exist")
    if age > max_age:
        return Result.problem(f"{path} was last touched {age:.0f}s ago")
    return Result.ok(f"{path} is fresh")


@hookimpl
def healthcheck_checkers():
    return [
        Checker(
            "file-age",
            description="is a heartbeat file fresh?",
            check=check,
            condition=Condition(
                "StaleHeartbeat",
                "HeartbeatTooOld",
                "HeartbeatIsFresh",
                "the heartbeat file is fresh",
            ),
            options=[
                Option("path", default="/run/app/heartbeat", help="file to watch"),
                Option("max_age", type="duration", default=300.0, help="oldest acceptable age"),
            ],
            interval=60,
        )
    ]
