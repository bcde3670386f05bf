"""Drain3 on the Content column of Loghub structured CSVs: its default configuration plus
the usual masking (the masks of Drain3's own example config), for side-by-side comparison
with our miner. Prints one JSON object per dataset: name, lines, predicted cluster ids,
seconds spent mining (tree search and masking, not CSV reading).

usage: drain3_accuracy.py ROOT NAME...
"""
import csv
import json
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# Drain3's examples/drain3.ini masks, unchanged.
MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def miner():
    config = TemplateMinerConfig()  # Drain3 defaults: depth 4, sim_th 0.4, max_children 100
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in MASKS]
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def main():
    root = sys.argv[1]
    for name in sys.argv[2:]:
        path = f"{root}/{name}/{name}_2k.log_structured.csv"
        with open(path, newline="", encoding="utf-8") as f:
            contents = [row["Content"] for row in csv.DictReader(f)]
        m = miner()
        t = time.perf_counter()
        ids = [m.add_log_message(c)["cluster_id"] for c in contents]
        secs = time.perf_counter() - t
        print(json.dumps({"name": name, "lines": len(ids), "ids": ids, "secs": secs}), flush=True)


if __name__ == "__main__":
    main()
