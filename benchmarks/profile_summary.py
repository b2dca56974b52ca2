"""Summarise a py-spy profile (``--format raw``): time per thread, and the hottest frames.

    python -m benchmarks.profile_summary PROFILE [--top 40] [--only SUBSTRING]

How the profiles in benchmarks/profiles/ were made: ``py-spy record --pid AGENT --rate
200 --threads --gil --format raw`` while a scenario ran (``benchmarks.run --profile DIR``
does that for every scenario). ``--gil`` counts only the thread holding the GIL, so the
figures add up to the agent's Python CPU time; ``--only`` keeps the stacks that pass
through a frame (e.g. ``_apply_inside_namespace``).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

_LINE_NUMBER = re.compile(r":\d+\)")
_THREAD_ID = re.compile(r"\(\d+\)|0x[0-9a-f]+")


def summarise(path: str, top: int = 40, only: str | None = None) -> str:
    cumulative: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or not count.isdigit() or (only and only not in stack):
                continue  # (a last line cut short when py-spy was stopped has no count)
            n = int(count)
            frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
            total += n
            threads[_THREAD_ID.sub("", frames[0]).strip()] += n
            for frame in set(frames[1:]):
                cumulative[frame] += n
            own[frames[-1]] += n
    if not total:
        return f"{path}: no samples" + (f" through {only}" if only else "")
    lines = [f"{path}: {total} samples" + (f" through {only}" if only else "")]
    lines += [f"  {n:7d} {100 * n / total:5.1f}%  {t}" for t, n in threads.most_common(10)]
    lines.append("hottest frames, with what they call (cumulative):")
    lines += [f"  {n:7d} {100 * n / total:5.1f}%  {f}" for f, n in cumulative.most_common(top)]
    lines.append("hottest frames, on their own:")
    lines += [f"  {n:7d} {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(15)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--only", help="keep the stacks through this frame")
    args = parser.parse_args(argv)
    print(summarise(args.profile, args.top, args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
