"""Helpers shared by the table scripts: read `affinity train --output` records and format mean ± std."""
import glob, json, statistics


def load(pattern):
    """The records of the files matching `pattern`, in file-name order (a file holding a list gives its first)."""
    rows = []
    for path in sorted(glob.glob(pattern)):
        record = json.load(open(path))
        rows.append(record[0] if isinstance(record, list) else record)
    return rows


def mean_std(values, digits=4):
    """`mean ± std` (sample std) over several values, the value alone for one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
