"""Batch top-K over a Spark cluster: the user ids are partitioned over the executors and every partition is piped
through `affinity score` (Spark's `RDD.pipe`: the ids go to the program's standard input, its JSON lines come back),
so Spark does the partitioning, scheduling and retries and Affinity does the ranking.

    python examples/spark/score_users.py --users users.txt --model model.affinity --output top.jsonl \
        --master 'local[2]' --affinity .build/release/affinity

The model file and the executable must be readable at the same path on every executor (a shared file system, or
`spark-submit --files`). Each line of the output is `{"user", "items": [{"id", "score"}, ...], "source"}`; the
union of the partitions is exactly what one `affinity score` process writes for the same ids.
"""
import argparse
import shlex
import sys
import time

from pyspark.sql import SparkSession


def score_users(spark, users_path, model, affinity="affinity", k=10, exclude_seen=False, partitions=None,
                threads_per_task=1):
    """An RDD of JSON lines, one per user id of `users_path` (a text file, one id per line)."""
    context = spark.sparkContext
    users = context.textFile(users_path, minPartitions=partitions or context.defaultParallelism)
    command = [affinity, "score", "--model", model, "-k", str(k)] + (["--exclude-seen"] if exclude_seen else [])
    # One task per core: each `affinity score` ranks on `threads_per_task` threads. A failing program (a bad input
    # line) fails the task, as Spark's pipe does with checkCode.
    return users.pipe(" ".join(shlex.quote(part) for part in command),
                      env={"AFFINITY_THREADS": str(threads_per_task)}, checkCode=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", required=True, help="text file of user ids, one per line")
    parser.add_argument("--model", required=True, help="model file written by `affinity train --save`")
    parser.add_argument("--output", required=True, help="JSON lines file to write (collected on the driver)")
    parser.add_argument("--affinity", default="affinity", help="the affinity executable (default: on PATH)")
    parser.add_argument("-k", type=int, default=10, help="items per user")
    parser.add_argument("--exclude-seen", action="store_true", help="leave out each user's training items")
    parser.add_argument("--partitions", type=int, help="partitions of the user ids (default: Spark's parallelism)")
    parser.add_argument("--master", help="Spark master, e.g. local[2] (default: spark-submit's)")
    args = parser.parse_args()

    builder = SparkSession.builder.appName("affinity-score")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        started = time.perf_counter()
        lines = score_users(spark, args.users, args.model, affinity=args.affinity, k=args.k,
                            exclude_seen=args.exclude_seen, partitions=args.partitions)
        count = 0
        with open(args.output, "w", encoding="utf-8") as out:
            for line in lines.toLocalIterator():
                out.write(line + "\n")
                count += 1
        seconds = time.perf_counter() - started
        print(f"scored {count} users in {seconds:.2f} s ({count / seconds:.0f} users/s) over "
              f"{lines.getNumPartitions()} partitions", file=sys.stderr)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
