#!/usr/bin/env python3
"""Prints the scalars and text summaries of a run directory's TensorBoard event files as JSON,
read with TensorBoard's own reader (EventAccumulator). Used by the tests.

    .venv/bin/python tools/read_tfevents.py runs/adaptive
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]},
        "text": {tag: [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(tag)] for tag in tags["tensors"]},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
